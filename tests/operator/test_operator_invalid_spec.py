"""A spec the API server admitted but the operator's models reject (a CRD older or looser
than the operator): reported as Degraded with the reason, a permanent error for kopf (no
retries until the spec changes), written once. Unit tests: the Kubernetes API is a fake
that records the status patches."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast

import kopf
import pytest
from orderpipeline_operator.handlers.pipelines import reconcile_pipeline
from orderpipeline_operator.reconcile import reconcile
from orderpipeline_operator.runtime import Operator
from orderpipeline_operator.spec import InvalidSpec, parse_spec
from orderpipeline_operator.status_book import StatusBook

# Passes a looser schema (an operator version ahead of the installed CRD, say), not the
# models: the replica count is text, and a field this operator does not know.
SPEC = {
    "kafka": {"bootstrapServers": "kafka:9092"},
    "couchbase": {"connectionString": "couchbase://cb", "credentialsSecretRef": {"name": "cb"}},
    "fraud": {"replicas": "many"},
    "surprise": True,
}


class RecordingKube:
    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.patches.append(status)


def body() -> dict[str, Any]:
    meta = {"name": "odd", "namespace": "shop", "uid": "u-1", "generation": 4}
    return {"metadata": meta, "spec": SPEC, "status": {}}


def operator() -> tuple[Operator, RecordingKube]:
    kube = RecordingKube()
    op = SimpleNamespace(kube=kube, statuses=StatusBook(), lock=lambda uid: threading.Lock())
    return cast(Operator, op), kube


def test_model_rejection_names_every_field_and_what_to_do() -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_spec(SPEC)
    message = str(caught.value)
    assert "spec.fraud.replicas: Input should be a valid integer" in message
    assert "spec.surprise: Extra inputs are not permitted" in message
    assert "Fix the spec" in message


def test_invalid_spec_is_degraded_with_the_message_and_written_once() -> None:
    op, kube = operator()
    for _ in range(3):  # the create handler, then resync ticks
        with pytest.raises(InvalidSpec):
            reconcile(op, body(), trigger="create")
    (status,) = kube.patches
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Degraded"]["status"] == "True"
    assert conditions["Degraded"]["reason"] == "InvalidSpec"
    assert "spec.fraud.replicas" in conditions["Degraded"]["message"]
    assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == (
        "False",
        "InvalidSpec",
    )
    assert status["observedGeneration"] == 4
    assert "spec.fraud.replicas" in status["lastError"]


def test_invalid_spec_is_a_permanent_error_for_kopf() -> None:
    op, _ = operator()
    # kopf types the decorated handler as its callback protocol (every kwarg kopf passes).
    handler = cast(Callable[..., None], reconcile_pipeline)
    with pytest.raises(kopf.PermanentError, match=r"spec\.fraud\.replicas"):
        handler(
            body=kopf.Body(cast(Any, body())),
            memo=SimpleNamespace(operator=op),
            retry=0,
            reason="create",
        )
