"""The CRD's defaults and the pydantic models agree (a spec defaulted by the API server
parses to the same model as the bare spec)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from orderpipeline_operator.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]


def _schema() -> dict[str, Any]:
    crd = yaml.safe_load((ROOT / "crds" / "orderpipelines.yaml").read_text())
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec: dict[str, Any] = schema["properties"]["spec"]
    return spec


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Structural defaulting as the API server does it (defaults of absent fields)."""
    if not isinstance(value, dict) or "properties" not in schema:
        return value
    out = dict(value)
    for key, sub in schema["properties"].items():
        if key not in out and "default" in sub:
            out[key] = sub["default"]
        if key in out:
            out[key] = apply_defaults(sub, out[key])
    return out


def test_crd_defaults_match_model_defaults() -> None:
    bare = {
        "kafka": {"bootstrapServers": "k:9092"},
        "couchbase": {"connectionString": "couchbase://c", "credentialsSecretRef": {"name": "s"}},
    }
    defaulted = apply_defaults(_schema(), bare)
    assert defaulted != bare
    assert parse_spec(defaulted) == parse_spec(bare)


def test_samples_parse() -> None:
    for sample in (ROOT / "samples").glob("*.yaml"):
        for doc in yaml.safe_load_all(sample.read_text()):
            if doc["kind"] == "OrderPipeline":
                parse_spec(apply_defaults(_schema(), doc["spec"]))
