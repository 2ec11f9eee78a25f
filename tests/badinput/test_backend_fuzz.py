"""The real backend (on gocaves, with data from the real analytics consumer) fuzzed from its own
OpenAPI document with schemathesis: no 5xx, except a 503 where the operation documents it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from devinfra.procs import free_port
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from tests.chaos.harness import Pipeline, http_get, wait_until

pytestmark = [pytest.mark.couchbase, pytest.mark.kafka]

# Orders stored by the real producer and analytics consumer before the fuzzing starts, so every
# route answers from real data (aggregates, newest orders, alerts), not from an empty bucket.
ORDERS = 400

# The SSE stream never ends: a request to it would only time out.
STREAMING = "/api/stream"


def stored_orders(port: int) -> int:
    status, body = http_get(port, "/api/analytics")
    return int(body["totals"]["orders"]) if status == 200 else -1


@pytest.fixture(scope="module")
def backend_url(
    kafka: Any, gocaves: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    couchbase = gocaves.create_cluster(bucket="order_analytics")
    pipeline = Pipeline(kafka, couchbase, tmp_path_factory.mktemp("fuzz"))
    port = free_port()
    try:
        pipeline.start("analytics")
        pipeline.start_producer(ORDERS, rate=0)
        backend = pipeline.start("backend", BACKEND_PORT=str(port))
        wait_until(lambda: stored_orders(port) == ORDERS, 90, f"{ORDERS} orders in the backend")
        _, alerts = http_get(port, "/api/fraud-alerts?limit=100")
        assert alerts["alerts"], "the fuzzed backend should have alerts to serve"
        yield f"http://127.0.0.1:{port}"
        assert backend.alive(), backend.output()[-3000:]
    finally:
        pipeline.close()


def check(case: Any, backend_url: str) -> None:
    response = case.call(base_url=backend_url, timeout=10)
    status = response.status_code
    documented = {str(code) for code in case.operation.definition.raw.get("responses", {})}
    where = f"{case.method} {case.formatted_path} {case.query or ''}"
    if status == 503:
        assert "503" in documented, f"undocumented 503 on {where}"
        assert response.json()["detail"]
    else:
        assert status < 500, f"{status} on {where}: {response.text}"
    assert str(status) in documented or status in (404, 405, 413, 422), (status, where)


@pytest.mark.parametrize(
    "mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
)
def test_no_server_error_except_the_documented_503(backend_url: str, mode: Any) -> None:
    # schemathesis' own pytest integration (from_fixture) does not run under pytest 9: the
    # operations' strategies are driven by hypothesis directly instead.
    schema = schemathesis.openapi.from_url(f"{backend_url}/openapi.json")
    # An Err (an operation schemathesis cannot load) has no ok(): it fails the test here.
    operations = [r.ok() for r in schema.get_all_operations()]  # type: ignore[union-attr]
    operations = [op for op in operations if op.path != STREAMING]
    assert len(operations) >= 5, [op.path for op in operations]
    fuzzed: list[str] = []
    for operation in operations:

        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case: Any) -> None:
            check(case, backend_url)

        try:
            fuzz()
            fuzzed.append(operation.path)
        except Unsatisfiable:
            # Negative mode on an operation without parameters: nothing can be made invalid.
            assert mode == schemathesis.GenerationMode.NEGATIVE
            assert not operation.definition.raw.get("parameters"), operation.path
    # /api/orders and /api/fraud-alerts take `limit`: at least they get invalid input.
    assert len(fuzzed) >= 2, fuzzed
