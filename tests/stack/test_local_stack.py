"""`make up` / `make down`: the whole pipeline as local processes, seen in a real browser."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from devinfra.procs import free_port, pid_alive, wait_for
from devinfra.toolchain import Toolchain
from playwright.sync_api import Browser, Page, expect

pytestmark = [pytest.mark.kafka, pytest.mark.couchbase]  # runs the local stack


def _stack(command: str, rundir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devinfra.stack", command, str(rundir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    return {
        **os.environ,
        "ORDERPIPELINE_DASHBOARD_PORT": str(free_port()),
        "ORDERPIPELINE_KAFKA_PORT": str(free_port()),
        "PRODUCER_RATE": "20",
    }


@pytest.fixture(scope="module")
def running_stack(
    tmp_path_factory: pytest.TempPathFactory, stack_env: dict[str, str], toolchain: Toolchain
) -> Iterator[tuple[Path, str]]:
    toolchain.require("kafka", "gocaves", "java", "chromium")
    rundir = tmp_path_factory.mktemp("run") / "stack"
    up = _stack("up", rundir, stack_env)
    assert up.returncode == 0, up.stdout + up.stderr
    url = f"http://127.0.0.1:{stack_env['ORDERPIPELINE_DASHBOARD_PORT']}"
    assert url in up.stdout
    try:
        yield rundir, url
    finally:
        _stack("down", rundir, stack_env)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def test_up_shows_live_orders_in_the_dashboard(
    running_stack: tuple[Path, str], page: Page, repo_root: Path
) -> None:
    _, url = running_stack
    page.goto(url)
    expect(page.get_by_test_id("order-row").first).to_be_visible(timeout=30_000)
    expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "live")
    kpi = page.get_by_test_id("kpi-total-orders")
    first_total = int(kpi.get_attribute("data-value") or "0")
    assert first_total > 0
    # The producer keeps going, and the page follows without a reload.
    expect(kpi).not_to_have_attribute("data-value", str(first_total), timeout=15_000)
    artifacts = repo_root / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    page.screenshot(path=str(artifacts / "make-up-dashboard.png"), full_page=True)


def test_up_writes_connection_details(running_stack: tuple[Path, str]) -> None:
    rundir, url = running_stack
    env = dict(
        line.split("=", 1)
        for line in (rundir.parent / "local.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert env["DASHBOARD_URL"] == url
    assert env["KAFKA_BOOTSTRAP_SERVERS"].startswith("127.0.0.1:")
    assert env["COUCHBASE_CONNECTION_STRING"].startswith("couchbase://127.0.0.1:")
    assert env["COUCHBASE_BUCKET"] == "order_analytics"


def test_status_reports_every_process_healthy(
    running_stack: tuple[Path, str], stack_env: dict[str, str]
) -> None:
    rundir, _ = running_stack
    status = _stack("status", rundir, stack_env)
    assert status.returncode == 0, status.stdout
    for name in ("backend", "producer", "fraud", "payment", "analytics", "kafka", "gocaves"):
        assert any(
            line.split()[:3] and line.split()[0] == name and line.split()[2] == "ok"
            for line in status.stdout.splitlines()
        ), status.stdout


def test_second_up_does_not_start_a_second_stack(
    running_stack: tuple[Path, str], stack_env: dict[str, str]
) -> None:
    rundir, _ = running_stack
    before = (rundir / "supervisor.pid").read_text()
    again = _stack("up", rundir, stack_env)
    assert again.returncode == 0
    assert "already running" in again.stdout
    assert (rundir / "supervisor.pid").read_text() == before


SERVICES = ("producer", "fraud", "payment", "analytics", "backend")


def _state(rundir: Path) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((rundir / "state.json").read_text())
    return state


def _orders_in_kafka(bootstrap: str) -> list[str]:
    """Every order id in `orders`, read committed from the start to the end."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"stack-audit-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
        }
    )
    try:
        topic = consumer.list_topics("orders", timeout=10).topics["orders"]
        parts = [TopicPartition("orders", p, 0) for p in topic.partitions]
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in parts}
        consumer.assign(parts)
        ids: list[str] = []
        left = {p for p, end in ends.items() if end > 0}
        deadline = time.monotonic() + 60
        while left and time.monotonic() < deadline:
            message = consumer.poll(1)
            if message is None or message.error():
                continue
            value, offset, partition = message.value(), message.offset(), message.partition()
            assert value is not None and offset is not None and partition is not None
            ids.append(json.loads(value)["order_id"])
            if offset + 1 >= ends[partition]:
                left.discard(partition)
        assert not left, f"could not read `orders` to its end: {left}"
        return ids
    finally:
        consumer.close()


def test_killed_services_are_restarted_and_nothing_is_lost_or_counted_twice(
    running_stack: tuple[Path, str], stack_env: dict[str, str]
) -> None:
    rundir, url = running_stack

    def restarted(name: str, old_pid: int) -> bool:
        now = _state(rundir)[name]
        return bool(now["pid"] != old_pid and pid_alive(now["pid"]) and now["restarts"] == 1)

    for name in SERVICES:
        pid = _state(rundir)[name]["pid"]
        os.kill(pid, signal.SIGKILL)
        wait_for(partial(restarted, name, pid), timeout=60, what=f"{name} restarted")
    wait_for(
        lambda: _stack("status", rundir, stack_env).returncode == 0,
        timeout=60,
        what="every process healthy again",
    )
    status = _stack("status", rundir, stack_env).stdout
    for name in SERVICES:
        (line,) = [line for line in status.splitlines() if line.split()[:1] == [name]]
        assert line.split()[2:4] == ["ok", "1"], status  # state, restarts
    assert "restart 1" in Path(_state(rundir)["fraud"]["log"]).read_text()

    # Quiet the producer (stopped, not exited: the supervisor leaves it alone), then
    # compare what Kafka holds with what the backend counts.
    producer = _state(rundir)["producer"]["pid"]
    os.kill(producer, signal.SIGSTOP)
    try:
        bootstrap = dict(
            line.split("=", 1)
            for line in (rundir.parent / "local.env").read_text().splitlines()
            if "=" in line and not line.startswith("#")
        )["KAFKA_BOOTSTRAP_SERVERS"]
        seen: dict[str, Any] = {}

        def exact() -> bool:
            ids = _orders_in_kafka(bootstrap)
            with urllib.request.urlopen(f"{url}/api/analytics", timeout=5) as response:
                totals = json.load(response)["totals"]
            seen.update(kafka=len(ids), distinct=len(set(ids)), totals=totals)
            return bool(totals["orders"] == len(ids) == len(set(ids)) == totals["payments"])

        wait_for(exact, timeout=120, interval=2, what=f"totals equal to Kafka: {seen}")
    finally:
        os.kill(producer, signal.SIGCONT)


def test_down_leaves_no_process(
    tmp_path: Path, stack_env: dict[str, str], toolchain: Toolchain
) -> None:
    toolchain.require("kafka", "gocaves", "java")
    rundir = tmp_path / "stack"
    env = stack_env | {
        "ORDERPIPELINE_DASHBOARD_PORT": str(free_port()),
        "ORDERPIPELINE_KAFKA_PORT": str(free_port()),
    }
    assert _stack("up", rundir, env).returncode == 0
    state = json.loads((rundir / "state.json").read_text())
    supervisor = int((rundir / "supervisor.pid").read_text())
    pids = [info["pid"] for info in state.values()] + [supervisor]
    assert all(pid_alive(pid) for pid in pids)
    down = _stack("down", rundir, env)
    assert down.returncode == 0, down.stderr
    assert [pid for pid in pids if pid_alive(pid)] == []
    assert not rundir.exists()
