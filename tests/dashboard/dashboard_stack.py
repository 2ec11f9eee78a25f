"""The real pipeline behind the dashboard, as local processes: analytics, payment and the
backend serving the built dashboard, on the test session's Kafka broker and gocaves."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devinfra.procs import ManagedProcess, free_port, wait_for

ORDERPIPELINE = Path(sys.executable).parent / "orderpipeline"


def get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def answers_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class Stack:
    env: dict[str, str]
    logs: Path
    backend_port: int
    processes: list[ManagedProcess] = field(default_factory=list)
    backend: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.backend_port}"

    def analytics(self) -> dict[str, Any]:
        document: dict[str, Any] = get_json(f"{self.url}/api/analytics")
        return document

    def start_worker(self, name: str) -> ManagedProcess:
        health = free_port()
        process = ManagedProcess(
            name,
            [ORDERPIPELINE, name],
            log_path=self.logs / f"{name}.log",
            env=self.env | {"HEALTH_PORT": str(health)},
        ).start()
        self.processes.append(process)
        wait_for(
            lambda: answers_ok(f"http://127.0.0.1:{health}/readyz"),
            timeout=60,
            what=name,
            alive=process.ensure_running,
        )
        return process

    def start_backend(self, dist: Path) -> ManagedProcess:
        """Start (or restart, on the same port) the backend serving `dist`."""
        process = ManagedProcess(
            "backend",
            [ORDERPIPELINE, "backend"],
            log_path=self.logs / "backend.log",
            env=self.env
            | {
                "BACKEND_HOST": "127.0.0.1",
                "BACKEND_PORT": str(self.backend_port),
                "DASHBOARD_DIST": str(dist),
            },
        ).start()
        self.backend = process
        self.processes.append(process)
        wait_for(
            lambda: answers_ok(f"{self.url}/readyz"),
            timeout=60,
            what="backend",
            alive=process.ensure_running,
        )
        return process

    def run_producer(self, count: int) -> None:
        """`orderpipeline producer` with PRODUCER_COUNT: it publishes `count` orders and exits."""
        log = self.logs / "producer.log"
        with log.open("ab") as out:
            result = subprocess.run(
                [ORDERPIPELINE, "producer"],
                env=self.env
                | {
                    "PRODUCER_COUNT": str(count),
                    "PRODUCER_RATE": "0",
                    "HEALTH_PORT": str(free_port()),
                },
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=60,
                check=False,
            )
        assert result.returncode == 0, f"producer failed:\n{log.read_text(errors='replace')}"

    def wait_for_totals(self, orders: int, payments: int, timeout: float = 60) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        def arrived() -> bool:
            seen.update(self.analytics())
            totals = seen["totals"]
            return bool(totals["orders"] == orders and totals["payments"] == payments)

        try:
            wait_for(arrived, timeout=timeout, what=f"{orders} orders in /api/analytics")
        except TimeoutError as exc:
            detail = f"{exc}; last totals {seen.get('totals')}\n{self.log_tails()}"
            raise TimeoutError(detail) from None
        return seen

    def log_tails(self) -> str:
        return "\n".join(f"--- {p.name}:\n{p.log_tail(15)}" for p in self.processes)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def unique_topics() -> dict[str, str]:
    """Topics and groups of this stack only: the broker is shared by the whole session."""
    suffix = uuid.uuid4().hex[:8]
    return {
        "ORDERS_TOPIC": f"orders-{suffix}",
        "FRAUD_ALERTS_TOPIC": f"fraud-alerts-{suffix}",
        "PAYMENTS_TOPIC": f"payments-{suffix}",
        "ANALYTICS_TOPIC": f"order-analytics-{suffix}",
        "DEAD_LETTER_TOPIC": f"orders-dlq-{suffix}",
        "ANALYTICS_GROUP_ID": f"analytics-{suffix}",
        "PAYMENT_GROUP_ID": f"payments-{suffix}",
    }


def order_json(order_id: str, amount: float, country: str) -> bytes:
    """One order as docs/contracts.md defines it, created now."""
    now = datetime.now(UTC)
    created = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    return json.dumps(
        {
            "order_id": order_id,
            "customer_id": 4242,
            "amount": amount,
            "currency": "USD",
            "country": country,
            "status": "CREATED",
            "created_at": created,
            "source": "dashboard-e2e",
        }
    ).encode()
