"""The backend as a real process on gocaves: API key, CORS, request and `limit` bounds, bucket
names, and credentials that never come back out (logs, /metrics, responses)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import pytest
from devinfra.gocaves import CouchbaseCluster
from devinfra.procs import free_port

from tests.analytics.helpers import ServiceProcess, wait_until

from .canary import http_text, leaks, new_canary

pytestmark = [pytest.mark.couchbase]

EXIT_CONFIG = 2


class Backend:
    def __init__(self, process: ServiceProcess, port: int) -> None:
        self.process = process
        self.port = port

    def get(self, path: str, **headers: str) -> tuple[int, str]:
        return http_text(f"http://127.0.0.1:{self.port}{path}", headers)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request(method, path, body=body, headers=dict(headers or {}))
        return conn.getresponse()


StartBackend = Callable[[dict[str, str]], Backend]


@pytest.fixture
def start_backend(tmp_path: Path) -> Iterator[StartBackend]:
    started: list[ServiceProcess] = []

    def start(env: dict[str, str]) -> Backend:
        port = free_port()
        process = ServiceProcess("backend", {"BACKEND_PORT": str(port), **env}, tmp_path)
        started.append(process.start())
        backend = Backend(process, port)

        def answers() -> bool:
            try:
                return backend.get("/healthz")[0] == 200
            except OSError:
                assert process.alive(), process.output()
                return False

        wait_until(answers, 30, "the backend to listen")
        return backend

    yield start
    for process in started:
        process.close()


API_KEY = new_canary("api-key")


@pytest.fixture
def backend(couchbase: CouchbaseCluster, start_backend: StartBackend) -> Backend:
    started: Backend = start_backend({**couchbase.service_env(), "BACKEND_API_KEY": API_KEY})
    wait_until(
        lambda: started.get("/api/analytics", **{"X-API-Key": API_KEY})[0] == 200,
        30,
        "the first snapshot",
    )
    return started


def test_api_needs_the_key_when_configured_and_probes_stay_open(backend: Backend) -> None:
    for path in ("/api/analytics", "/api/orders", "/api/fraud-alerts", "/api/stream"):
        status, body = backend.get(path)
        assert status == 401, path
        assert "X-API-Key" in json.loads(body)["detail"]
        assert backend.get(path, **{"X-API-Key": API_KEY + "x"})[0] == 401, path
        assert backend.get(path, **{"X-API-Key": API_KEY[:-1]})[0] == 401, path
    for path in ("/api/analytics", "/api/orders", "/api/fraud-alerts"):
        assert backend.get(path, **{"X-API-Key": API_KEY})[0] == 200, path
    for path in ("/healthz", "/readyz", "/metrics"):
        assert backend.get(path)[0] == 200, path
    # The key is a credential too: never logged, never a metric label.
    metrics = backend.get("/metrics")[1]
    assert leaks({"log": backend.process.output(), "/metrics": metrics}, [API_KEY]) == []


def test_cors_is_closed_for_an_arbitrary_origin(backend: Backend) -> None:
    origin = "https://attacker.example"
    key = {"X-API-Key": API_KEY}
    simple = backend.request("GET", "/api/analytics", headers={"Origin": origin, **key})
    assert simple.status == 200
    preflight = backend.request(
        "OPTIONS",
        "/api/analytics",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "X-API-Key",
        },
    )
    for response in (simple, preflight):
        names = {name.lower() for name, _ in response.getheaders()}
        assert not {n for n in names if n.startswith("access-control-")}, response.getheaders()
    assert preflight.status >= 400


def test_request_bodies_are_bounded(backend: Backend) -> None:
    key = {"X-API-Key": API_KEY}
    big = backend.request("GET", "/api/analytics", body=b"x" * 70_000, headers=key)
    assert big.status == 413
    declared = backend.request(
        "GET", "/api/analytics", headers={**key, "Content-Length": str(10**12)}
    )
    assert declared.status == 413  # refused from the header, before reading anything
    # An iterable body without a length: http.client sends it chunked.
    chunked = backend.request("GET", "/api/analytics", body=iter([b"x" * 1000]), headers=key)
    assert chunked.status == 411
    assert backend.process.alive()


@pytest.mark.parametrize("limit", ["0", "-1", "101", "1000000000", "1e3", "ten", ""])
def test_limit_outside_1_to_100_is_refused(backend: Backend, limit: str) -> None:
    for path in ("/api/orders", "/api/fraud-alerts"):
        status, _ = backend.get(f"{path}?limit={limit}", **{"X-API-Key": API_KEY})
        assert status == 422, (path, limit)


def test_limit_within_bounds_is_served(backend: Backend) -> None:
    for limit in ("1", "100"):
        status, body = backend.get(f"/api/orders?limit={limit}", **{"X-API-Key": API_KEY})
        assert status == 200 and "orders" in json.loads(body)


@pytest.mark.parametrize(
    "bucket",
    ["order_analytics`; DROP", "../order_analytics", "b" * 101, "ünicode"],
)
@pytest.mark.parametrize("service", ["backend", "analytics"])
def test_an_invalid_bucket_name_never_reaches_couchbase(
    couchbase: CouchbaseCluster, tmp_path: Path, service: str, bucket: str
) -> None:
    env = {**couchbase.service_env(), "COUCHBASE_BUCKET": bucket, "BACKEND_PORT": "0"}
    process = ServiceProcess(service, env, tmp_path).start()
    try:
        assert process.process is not None
        assert process.process.wait(30) == EXIT_CONFIG
    finally:
        process.close()
    lines = [json.loads(line) for line in process.output().splitlines() if line.startswith("{")]
    errors = [line for line in lines if line.get("level") == "error"]
    assert errors and "bucket" in json.dumps(errors).lower()
    assert "connected to couchbase" not in process.output()


def test_a_wrong_couchbase_password_is_reported_but_never_shown(
    couchbase: CouchbaseCluster, start_backend: StartBackend
) -> None:
    canary = new_canary("couchbase-password")
    env = {**couchbase.service_env(), "COUCHBASE_PASSWORD": canary, "LOG_LEVEL": "DEBUG"}
    backend: Backend = start_backend(env)
    wait_until(lambda: "cannot use couchbase" in backend.get("/readyz")[1], 30, "the auth failure")
    places = {
        "log": "",
        "/readyz": backend.get("/readyz")[1],
        "/api/analytics": backend.get("/api/analytics")[1],
        "/metrics": backend.get("/metrics")[1],
        "/openapi.json": backend.get("/openapi.json")[1],
    }
    assert backend.get("/readyz")[0] == 503
    assert backend.get("/api/analytics")[0] == 503
    assert "Authentication" in places["/readyz"]
    backend.process.stop(30)
    places["log"] = backend.process.output()
    assert "cannot use couchbase" in places["log"]
    assert leaks(places, [canary]) == []
