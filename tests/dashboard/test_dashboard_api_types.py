"""The dashboard's API types are generated from the backend's OpenAPI document, not kept by
hand: regenerated here from the live app's document, they must equal the committed file."""

from __future__ import annotations

import difflib
import json

from orderpipeline.backend.openapi import contract_document
from orderpipeline.backend.schemas import Analytics

from .dashboard_sample import sample_analytics
from .dashboard_tools import DASHBOARD, npm, output_of

GENERATED = DASHBOARD / "src" / "api" / "openapi.gen.ts"


def test_generated_api_types_match_the_backends_openapi_document() -> None:
    # The same two steps as `make api-types`: the document on stdin, the types on stdout.
    result = npm("run", "--silent", "api-types", stdin=json.dumps(contract_document()))
    assert result.returncode == 0, output_of(result)
    committed = GENERATED.read_text()
    diff = "".join(
        difflib.unified_diff(
            committed.splitlines(keepends=True),
            result.stdout.splitlines(keepends=True),
            "committed",
            "generated",
        )
    )
    assert result.stdout == committed, (
        f"{GENERATED.name} is stale: run `make api-types` and commit it\n{diff[:4000]}"
    )


def test_the_analytics_type_is_the_generated_one() -> None:
    # types.ts names the generated schemas; a hand-written interface there would bypass them.
    types = (DASHBOARD / "src" / "api" / "types.ts").read_text()
    assert 'from "./openapi.gen"' in types
    assert "interface" not in types


def test_the_stub_backends_sample_is_a_valid_analytics_document() -> None:
    # The page tests against the stub backend stand for the real one only while its document
    # keeps to the same contract.
    sample = sample_analytics()
    assert Analytics.model_validate_json(json.dumps(sample)).model_dump(mode="json") == sample
