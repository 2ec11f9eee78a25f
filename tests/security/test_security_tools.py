"""The tools the security tests rely on, checked on known inputs: the canary search finds a
secret in every form it could leak in, helm release records decode, and the dependency audit
fails when it could not check a package or meets an unjustified advisory."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable

import pytest

from .canary import decode_helm_release, leaks, new_canary
from .dependency_audit import (
    justified_ids,
    parse_npm_audit,
    parse_pip_audit,
    verdict,
)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda s: f"password={s}",
        lambda s: base64.b64encode(s.encode()).decode(),
        lambda s: json.dumps({"p": s + '"'}),
    ],
    ids=["plain", "base64", "json"],
)
def test_canary_is_found_in_every_form(wrap: Callable[[str], str]) -> None:
    canary = new_canary("x")
    assert leaks({"here": wrap(canary), "clean": "nothing"}, [canary]) == [f"here: {canary}"]


def test_helm_release_record_decodes() -> None:
    record = {"name": "r", "manifest": "kind: ConfigMap", "config": {"a": 1}}
    helm_payload = base64.b64encode(gzip.compress(json.dumps(record).encode()))
    secret_data = base64.b64encode(helm_payload).decode()  # as `kubectl get -o json` shows it
    assert json.loads(decode_helm_release(secret_data)) == record


def test_pip_audit_fails_on_unaudited_packages_and_unjustified_findings() -> None:
    data = {
        "dependencies": [
            {"name": "a", "version": "1", "vulns": []},
            {"name": "b", "version": "2", "skip_reason": "Dependency not found on PyPI"},
            {"name": "c", "version": "3", "vulns": [{"id": "PYSEC-2024-1", "aliases": []}]},
            {"name": "d", "version": "4", "vulns": [{"id": "GHSA-aaaa-bbbb-cccc"}]},
        ]
    }
    report = parse_pip_audit(data)
    assert report.audited == 3
    problems = verdict(report, justified_ids("accepted: GHSA-aaaa-bbbb-cccc because ..."))
    assert len(problems) == 2
    assert "could not audit: b 2" in problems[0]
    assert "PYSEC-2024-1" in problems[1]


def test_npm_audit_fails_when_the_advisory_service_does_not_answer() -> None:
    report = parse_npm_audit({"message": "405 Method Not Allowed", "statusCode": 405})
    assert verdict(report, set()) != []
    clean = parse_npm_audit({"vulnerabilities": {}, "metadata": {"dependencies": {"prod": 12}}})
    assert (clean.audited, verdict(clean, set())) == (12, [])
