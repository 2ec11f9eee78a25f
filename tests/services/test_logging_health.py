"""JSON logs without secrets; the health server's endpoints."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from orderpipeline.core.health import HealthServer, HealthState
from orderpipeline.core.logging import configure_logging, get_logger
from orderpipeline.core.metrics import ServiceMetrics


def test_log_lines_are_json_and_mask_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", service="unit")
    get_logger("t").info(
        "connecting", sasl_password="hunter2", config={"sasl.password": "hunter2", "x": 1}
    )
    line = capsys.readouterr().out.strip().splitlines()[-1]
    event = json.loads(line)
    assert event["event"] == "connecting" and event["service"] == "unit"
    assert "hunter2" not in line
    assert event["config"]["x"] == 1


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_readiness_follows_the_worker_and_metrics_are_served() -> None:
    ServiceMetrics("unit")  # what every service creates at start (the test ran alone without)
    state = HealthState()
    with HealthServer(state, 0, host="127.0.0.1") as server:
        assert get(server.port, "/healthz")[0] == 200
        assert get(server.port, "/readyz")[0] == 503
        state.set_ready(True)
        assert get(server.port, "/readyz") == (200, '{"status": "ready"}')
        status, body = get(server.port, "/metrics")
        assert status == 200 and "orderpipeline_messages_consumed" in body
        assert get(server.port, "/nope")[0] == 404


def test_a_stalled_loop_fails_the_liveness_probe() -> None:
    state = HealthState(stall_after=0.0)
    with HealthServer(state, 0, host="127.0.0.1") as server:
        assert get(server.port, "/healthz")[0] == 503


def listening_hosts(port: int) -> set[str]:
    """The IPv4 addresses with a socket listening on `port` (from /proc/net/tcp)."""
    hosts = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:
            hosts.add(".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return hosts


@pytest.mark.parametrize(("host", "expected"), [("127.0.0.1", "127.0.0.1"), (None, "0.0.0.0")])
def test_the_health_port_listens_on_health_host(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    host: str | None,
    expected: str,
) -> None:
    from orderpipeline.core.config import HealthSettings
    from orderpipeline.core.runner import ServiceContext, run_service

    monkeypatch.setenv("HEALTH_PORT", "0")
    monkeypatch.setenv("ORDERPIPELINE_SECRETS_DIR", "/nonexistent")
    if host is None:
        monkeypatch.delenv("HEALTH_HOST", raising=False)
    else:
        monkeypatch.setenv("HEALTH_HOST", host)
    seen: set[str] = set()

    def body(_settings: HealthSettings, _ctx: ServiceContext) -> int:
        started = [line for line in capsys.readouterr().out.splitlines() if "health_port" in line]
        seen.update(listening_hosts(int(json.loads(started[-1])["health_port"])))
        return 0

    assert run_service("unit", HealthSettings, body) == 0
    assert seen == {expected}
