"""JSON logs without secrets; the health server's endpoints."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from orderpipeline.core.health import HealthServer, HealthState
from orderpipeline.core.logging import configure_logging, get_logger


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
