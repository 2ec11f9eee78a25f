"""At least 50 generated OrderPipelines that break a rule of the CRD, on the real API server
with the real operator running: each is refused by the API server with a message naming the
field. Specs the schema cannot judge (a credentials Secret that does not exist) are accepted
and reported in a Ready=False condition; the operator neither crashes nor loops."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.chaos.harness import wait_until
from tests.operator.operator_helpers import OperatorProcess, install_operator_crds

from .crd_invalid import invalid_spec

pytestmark = [pytest.mark.cluster]

SECRET = "couchbase-credentials"


@pytest.fixture(scope="module")
def cluster(
    k8s: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, str, OperatorProcess]]:
    install_operator_crds(k8s)
    namespace = f"fuzz-{uuid.uuid4().hex[:8]}"
    k8s.kubectl("create", "namespace", namespace)
    # Cluster-wide, as tests/operator runs it (with OPERATOR_NAMESPACES set it handled nothing
    # after a 429 from the freshly created peering CRD: reported, not worked around here).
    operator = OperatorProcess(k8s, tmp_path_factory.mktemp("crd-fuzz"))
    operator.start()
    try:
        yield k8s, namespace, operator
    finally:
        operator.proc.stop()
        k8s.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


ACCEPTED: list[tuple[str, str]] = []
REJECTED: list[str] = []


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)
@given(broken=invalid_spec(SECRET), n=st.integers(0, 10**9))
def test_pipelines_breaking_a_crd_rule_are_refused_naming_the_field(
    cluster: tuple[Any, str, OperatorProcess], broken: tuple[str, str, dict[str, Any]], n: int
) -> None:
    k8s, namespace, _ = cluster
    what, field, spec = broken
    name = f"bad-{uuid.uuid4().hex[:10]}"
    body = {
        "apiVersion": "orderpipeline.io/v1alpha1",
        "kind": "OrderPipeline",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
    result = k8s.kubectl(
        "create", "--validate=strict", "-f", "-", input=json.dumps(body), check=False
    )
    assert result.returncode != 0, f"the API server accepted {what}"
    message = result.stderr
    # A value breaking the schema is "invalid"; a value whose shape the schema does not have
    # (an object where a list is declared) fails strict decoding as an "unknown field".
    assert "invalid" in message.lower() or "unknown field" in message, message
    assert field in message, f"the refusal of {what} does not name {field!r}: {message}"
    REJECTED.append(what)


def test_specs_only_the_operator_can_judge_carry_a_false_condition_and_it_stays_calm(
    cluster: tuple[Any, str, OperatorProcess],
) -> None:
    k8s, namespace, operator = cluster
    assert len(REJECTED) >= 50, f"only {len(REJECTED)} invalid specs were tried"
    # Semantically wrong although the schema allows it: credentials Secrets that do not exist.
    for i in range(3):
        name = f"nosecret-{i}"
        body = {
            "apiVersion": "orderpipeline.io/v1alpha1",
            "kind": "OrderPipeline",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "kafka": {"bootstrapServers": "kafka:9092"},
                "couchbase": {
                    "connectionString": "couchbase://couchbase",
                    "credentialsSecretRef": {"name": f"missing-{i}"},
                },
            },
        }
        k8s.kubectl("create", "-f", "-", input=json.dumps(body))
        ACCEPTED.append((name, "credentials Secret missing"))

    def reported(name: str) -> bool:
        obj = json.loads(k8s.kubectl("-n", namespace, "get", "opl", name, "-o", "json").stdout)
        conditions = (obj.get("status") or {}).get("conditions") or []
        ready = [c for c in conditions if c["type"] == "Ready"]
        return bool(ready) and ready[0]["status"] == "False" and bool(ready[0]["message"])

    for name, what in ACCEPTED:
        wait_until(partial(reported, name), 90, f"a Ready=False condition on {name} ({what})")

    # Calm: alive, and with every object settled, the log grows by periodic resyncs only.
    assert operator.proc.running and operator.alive()
    before = len(operator.proc.log_path.read_text().splitlines())
    time.sleep(10)
    grown = len(operator.proc.log_path.read_text().splitlines()) - before
    assert grown < 40 * max(1, len(ACCEPTED)), f"{grown} log lines in 10 s"
    assert operator.proc.running
    print(f"rejected by the API server: {len(REJECTED)}; accepted and reported: {ACCEPTED}")
