"""Backend routes at unit level: the app with a fake analytics source (no Couchbase)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from orderpipeline.backend.api.ready import accepts_gzip
from orderpipeline.backend.core.config import BackendSettings
from orderpipeline.backend.feed import AnalyticsFeed
from orderpipeline.backend.main import create_app
from orderpipeline.backend.openapi import contract_document
from orderpipeline.backend.schemas import AlertsPage, Analytics, OrdersPage
from orderpipeline.backend.static import resolve
from orderpipeline.core.aggregate import PartitionAggregate, Record, apply_batch
from orderpipeline.core.aggregate_store import PartitionId, StoreUnavailable
from orderpipeline.core.order import Order

NOW = datetime.now(UTC)


def order(i: int, amount: float, country: str, minutes_ago: int = 0) -> Order:
    return Order(
        order_id=f"ord_{i:04d}",
        customer_id=i,
        amount=amount,
        currency="USD",
        country=country,
        status="CREATED",
        created_at=NOW - timedelta(minutes=minutes_ago, seconds=i),
    )


# Ages spread over 0-79 minutes: some orders are in the 60-minute window, some surely not.
ORDERS = [order(i, 100.0 + i * 10, ["US", "DE", "FR"][i % 3], i * 7 % 80) for i in range(60)]
# The orders the stored aggregates hold as fraud alerts: the documented rule (docs/services.md),
# restated. The backend applies no rule; it must serve exactly what analytics stored.
FLAGGED = {o.order_id for o in ORDERS if o.amount > 300 and o.country not in ("US", "CA")}


class FakeSource:
    """Two partitions of orders; `down` makes every call fail like an unreachable cluster."""

    def __init__(self) -> None:
        self.down = False
        self.version = 1
        self.started = False
        self.closed = False

    def start(self) -> None:
        self.started = True

    def read_all(self) -> tuple[dict[PartitionId, PartitionAggregate], tuple[int, ...]]:
        if self.down:
            raise StoreUnavailable("UnAmbiguousTimeoutException")
        halves = (ORDERS[::2], ORDERS[1::2])
        aggs = {
            PartitionId("orders", p): apply_batch(
                PartitionAggregate(),
                [
                    Record(i, o, "HIGH_AMOUNT_RISKY_COUNTRY" if o.order_id in FLAGGED else None)
                    for i, o in enumerate(half)
                ],
            )
            for p, half in enumerate(halves)
        }
        aggs[PartitionId("payments", 0)] = PartitionAggregate(next_offset=3, payments=3)
        return aggs, (self.version,)

    def ping(self) -> None:
        if self.down:
            raise StoreUnavailable("UnAmbiguousTimeoutException")

    def close(self) -> None:
        self.closed = True


def settings(**values: Any) -> BackendSettings:
    return BackendSettings(password="x", refresh_interval_seconds=0.05, **values)


@pytest.fixture
def source() -> FakeSource:
    return FakeSource()


@pytest.fixture
def client(source: FakeSource) -> Iterator[TestClient]:
    app = create_app(settings(), source=source)
    with TestClient(app) as test_client:
        feed: AnalyticsFeed = app.state.feed
        feed.refresh()
        yield test_client


def test_healthz_is_ok(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_503_with_a_detail_when_couchbase_is_down(
    client: TestClient, source: FakeSource
) -> None:
    assert client.get("/readyz").json() == {"status": "ready"}
    source.down = True
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "UnAmbiguousTimeout" in response.json()["detail"]


def test_analytics_matches_the_contract_and_the_data(client: TestClient) -> None:
    response = client.get("/api/analytics")
    assert response.status_code == 200
    body = Analytics.model_validate_json(response.content)
    assert body.status == "ok"
    assert body.totals.orders == 60
    assert body.totals.sales == sum(o.amount for o in ORDERS)
    assert body.totals.average_order_value == round(body.totals.sales / 60, 2)
    assert body.totals.payments == 3
    assert body.totals.fraud_alerts == len(FLAGGED)
    assert [o.order_id for o in body.orders] == [
        o.order_id for o in sorted(ORDERS, key=lambda o: o.created_at, reverse=True)[:50]
    ]
    assert len(body.per_minute) == 60
    assert body.per_minute == sorted(body.per_minute, key=lambda row: row.minute)
    # Ages as of now (the feed built its window a moment ago, however long after import):
    # under 58 minutes surely in the 60-minute window, over 61 surely out. Exact minute sums
    # are checked against the real store in the integration tests.
    in_window = sum(row.orders for row in body.per_minute)
    ages = [datetime.now(UTC) - o.created_at for o in ORDERS]
    surely_in = sum(1 for age in ages if age < timedelta(minutes=58))
    surely_out = sum(1 for age in ages if age > timedelta(minutes=61))
    assert surely_out > 0
    assert surely_in <= in_window <= len(ORDERS) - surely_out
    assert {row.country: row.orders for row in body.by_country} == {"US": 20, "DE": 20, "FR": 20}


def test_orders_are_newest_first_and_limited(client: TestClient) -> None:
    body = OrdersPage.model_validate_json(client.get("/api/orders", params={"limit": 5}).content)
    newest = sorted(ORDERS, key=lambda o: o.created_at, reverse=True)
    assert [o.order_id for o in body.orders] == [o.order_id for o in newest[:5]]
    default = client.get("/api/orders").json()
    assert len(default["orders"]) == 10


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten"])
def test_an_invalid_limit_is_422(client: TestClient, limit: str) -> None:
    assert client.get("/api/orders", params={"limit": limit}).status_code == 422
    assert client.get("/api/fraud-alerts", params={"limit": limit}).status_code == 422


def test_fraud_alerts_are_the_flagged_orders(client: TestClient) -> None:
    body = AlertsPage.model_validate_json(client.get("/api/fraud-alerts?limit=100").content)
    assert {a.order_id for a in body.alerts} == FLAGGED
    assert all(a.reason == "HIGH_AMOUNT_RISKY_COUNTRY" for a in body.alerts)


def test_api_is_503_with_json_when_the_data_is_stale(source: FakeSource) -> None:
    source.down = True
    app = create_app(settings(), source=source)
    with TestClient(app) as client:
        for path in ("/api/analytics", "/api/orders", "/api/fraud-alerts", "/api/stream"):
            response = client.get(path)
            assert response.status_code == 503, path
            assert "detail" in response.json()


def test_stream_sends_the_analytics_at_connect(client: TestClient) -> None:
    with client.stream("GET", "/api/stream") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        assert next(lines) == "event: analytics"
        data = next(lines)
        assert data.startswith("data: ")
        assert json.loads(data.removeprefix("data: "))["totals"]["orders"] == 60


def test_api_key_is_required_when_configured(source: FakeSource) -> None:
    app = create_app(settings(api_key="s3cret"), source=source)
    with TestClient(app) as client:
        app.state.feed.refresh()
        assert client.get("/api/analytics").status_code == 401
        assert client.get("/api/analytics", headers={"X-API-Key": "wrong"}).status_code == 401
        assert client.get("/api/analytics", headers={"X-API-Key": "s3cret"}).status_code == 200
        assert client.get("/healthz").status_code == 200  # probes stay open


def test_cors_is_closed_by_default_and_opens_for_listed_origins(source: FakeSource) -> None:
    origin = {"Origin": "https://dash.example"}
    with TestClient(create_app(settings(), source=source)) as client:
        assert "access-control-allow-origin" not in client.get("/healthz", headers=origin).headers
    app = create_app(settings(cors_origins="https://dash.example"), source=source)
    with TestClient(app) as client:
        headers = client.get("/healthz", headers=origin).headers
        assert headers["access-control-allow-origin"] == "https://dash.example"


def test_large_request_bodies_are_refused(client: TestClient) -> None:
    response = client.request("GET", "/api/analytics", content=b"x" * 70_000)
    assert response.status_code == 413
    assert "detail" in response.json()


def test_metrics_and_openapi_are_served(client: TestClient) -> None:
    client.get("/api/analytics")
    metrics = client.get("/metrics").text
    assert 'orderpipeline_backend_requests_total{route="/api/analytics",status="200"}' in metrics
    schema = client.get("/openapi.json").json()
    assert {"/api/analytics", "/api/orders", "/api/fraud-alerts", "/api/stream"} <= set(
        schema["paths"]
    )


def test_unknown_paths_are_404_json_without_a_dashboard(client: TestClient) -> None:
    response = client.get("/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


def test_dashboard_is_served_with_index_fallback_without_shadowing_the_api(
    source: FakeSource, tmp_path: Path
) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<html>dashboard</html>")
    (tmp_path / "assets" / "app.js").write_text("console.log(1)")
    app = create_app(settings(dashboard_dist=tmp_path), source=source)
    with TestClient(app) as client:
        app.state.feed.refresh()
        assert client.get("/").text == "<html>dashboard</html>"
        assert client.get("/orders/123").text == "<html>dashboard</html>"
        assert client.get("/assets/app.js").text == "console.log(1)"
        assert client.get("/api/analytics").json()["status"] == "ok"
        assert client.get("/api/unknown").status_code == 404
        assert client.get("/healthz").json() == {"status": "ok"}


def test_dashboard_paths_never_leave_the_dist_folder(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("i")
    (tmp_path.parent / "outside.txt").write_text("o")
    assert resolve(tmp_path, "../outside.txt") == tmp_path.resolve() / "index.html"
    assert resolve(tmp_path, "/etc/passwd") == tmp_path.resolve() / "index.html"


def test_analytics_body_is_the_snapshots_model_encoded(client: TestClient) -> None:
    response = client.get("/api/analytics")
    snapshot = client.app.state.feed.current()  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/json"
    assert response.content == snapshot.analytics.model_dump_json().encode()
    assert Analytics.model_validate_json(response.content) == snapshot.analytics


def test_analytics_is_gzipped_for_clients_that_accept_it(client: TestClient) -> None:
    snapshot = client.app.state.feed.current()  # type: ignore[attr-defined]
    # A browser's header: the body is the snapshot's, gzipped (httpx decodes it).
    browser = client.get("/api/analytics", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert browser.headers["content-encoding"] == "gzip"
    assert browser.headers["vary"] == "accept-encoding"
    assert browser.content == snapshot.body
    assert int(browser.headers["content-length"]) == len(snapshot.body_gzip) < len(snapshot.body)
    plain = client.get("/api/analytics", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.headers["vary"] == "accept-encoding"
    assert plain.content == snapshot.body
    assert int(plain.headers["content-length"]) == len(snapshot.body)
    head = client.head("/api/analytics", headers={"Accept-Encoding": "gzip"})
    assert head.content == b"" and head.headers["content-length"] == str(len(snapshot.body_gzip))


@pytest.mark.parametrize(
    ("accept_encoding", "gzipped"),
    [
        (None, False),  # says nothing: identity, as RFC 9110 advises
        ("gzip", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("br, gzip;q=0.5", True),
        ("*", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("*;q=0", False),
        ("*, gzip;q=0", False),  # a named coding overrides the wildcard
        ("gzip;q=nonsense", False),
        ("br, zstd", False),
        ("identity", False),
        ("", False),
    ],
)
def test_gzip_follows_the_accept_encoding_header(
    accept_encoding: str | None, gzipped: bool
) -> None:
    headers = [(b"host", b"x")]
    if accept_encoding is not None:
        headers.append((b"accept-encoding", accept_encoding.encode()))
    assert accepts_gzip({"type": "http", "headers": headers}) is gzipped


def test_analytics_answers_alike_with_and_without_an_api_key(source: FakeSource) -> None:
    answers = []
    for extra, headers in (({}, {}), ({"api_key": "k"}, {"X-API-Key": "k"})):
        app = create_app(settings(**extra), source=source)
        with TestClient(app) as client:
            app.state.feed.refresh()
            response = client.get("/api/analytics", headers=headers)
        answers.append((response.status_code, response.headers["content-type"], response.content))
    assert answers[0] == answers[1]
    assert answers[0][0] == 200 and json.loads(answers[0][2])["totals"]["orders"] == 60


def test_analytics_accepts_get_and_head_only(client: TestClient) -> None:
    assert client.head("/api/analytics").status_code == 200
    response = client.post("/api/analytics")
    assert response.status_code == 405
    assert response.headers["allow"] in ("GET, HEAD", "HEAD, GET")


def test_openapi_documents_analytics_with_its_model_and_the_key_when_required(
    source: FakeSource,
) -> None:
    for api_key, secured in ((None, False), ("k", True)):
        with TestClient(create_app(settings(api_key=api_key), source=source)) as client:
            schema = client.get("/openapi.json").json()
        operation = schema["paths"]["/api/analytics"]["get"]
        ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": "#/components/schemas/Analytics"}
        assert set(operation["responses"]) == {"200", "503"}
        # Documented like the FastAPI routes beside it.
        pages = schema["paths"]["/api/orders"]["get"]
        assert ("security" in operation) is secured
        assert operation.get("security") == pages.get("security")


def test_the_lifespan_starts_and_closes_the_source(source: FakeSource) -> None:
    app = create_app(settings(), source=source)
    assert not source.started  # creating the app opens nothing
    with TestClient(app):
        assert source.started and not source.closed
    assert source.closed


def test_the_contract_document_is_the_default_deployments_whatever_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The dashboard's types are generated from it: a key in the caller's shell must not count.
    monkeypatch.setenv("BACKEND_API_KEY", "from-the-shell")
    document = contract_document()
    assert "securitySchemes" not in document.get("components", {})
    analytics = document["paths"]["/api/analytics"]["get"]["responses"]["200"]
    assert analytics["content"]["application/json"]["schema"]["$ref"].endswith("/Analytics")


def test_stored_orders_that_break_the_contract_are_not_served_and_the_503_says_why() -> None:
    class DamagedSource(FakeSource):
        damaged = True

        def read_all(self) -> tuple[dict[PartitionId, PartitionAggregate], tuple[int, ...]]:
            aggs, version = super().read_all()
            if not self.damaged:
                return aggs, version
            first = aggs[PartitionId("orders", 0)]
            broken = ({**first.latest_orders[0], "currency": "dollars"}, *first.latest_orders[1:])
            aggs[PartitionId("orders", 0)] = replace(first, latest_orders=broken)
            return aggs, (version[0] + 1,)

    source = DamagedSource()
    app = create_app(settings(), source=source)
    with TestClient(app) as client:
        app.state.feed.refresh()
        response = client.get("/api/analytics")
        assert response.status_code == 503
        assert "break the API contract" in response.json()["detail"]
        assert "currency" in response.json()["detail"]
        source.damaged = False  # e.g. analytics rewrote the document: served again
        app.state.feed.refresh()
        assert client.get("/api/analytics").status_code == 200


def test_openapi_names_the_analytics_model_as_the_streams_event_data() -> None:
    stream = contract_document()["paths"]["/api/stream"]["get"]["responses"]["200"]
    events = stream["content"]["text/event-stream"]
    assert events["x-sse-data"] == {"$ref": "#/components/schemas/Analytics"}
    assert "event: analytics" in stream["description"]
