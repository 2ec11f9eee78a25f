"""What every benchmark module shares: the environment it runs in and the figures it reports.

A module plugs in by exposing `measure(env: BenchEnv, quick: bool) -> list[Figure]`
(bench/workers.py here; bench/analytics.py and bench/backend.py when present).
"""

from __future__ import annotations

import os
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orderpipeline.core.order import Order


@dataclass
class Figure:
    """One line of bench/results/latest.json.

    `value` is the median of the runs, `min`/`max` their range; `baseline` the same quantity
    for the reproduction of the original design (bench/baseline/), measured in the same run;
    `target` says in words what `met` checks; `module` the benchmark module that measured it.
    """

    name: str
    unit: str
    value: float
    min: float
    max: float
    baseline: float | None
    target: str
    met: bool | None
    module: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BenchEnv:
    """The infrastructure a benchmark runs against, started by bench/run.py."""

    workdir: Path
    bootstrap_servers: str
    kafka_client_config: dict[str, Any]
    kafka_env: dict[str, str]
    # Couchbase (gocaves): a fresh cluster per call, and its connection details as env vars.
    new_couchbase: Callable[[], Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def service_env(self, **overrides: str) -> dict[str, str]:
        """Environment for `orderpipeline <service>` subprocesses against this broker."""
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HEALTH_PORT": "0",
            "LOG_LEVEL": "INFO",
            "ORDERPIPELINE_SECRETS_DIR": str(self.workdir / "no-secrets"),
            **self.kafka_env,
            **overrides,
        }


def summarize(
    name: str,
    unit: str,
    runs: list[float],
    baseline_runs: list[float] | None,
    target: str,
    check: Callable[[float, float | None], bool] | None,
) -> Figure:
    """Median/min/max of `runs` next to the median baseline; `check(value, baseline)` -> met."""
    value = statistics.median(runs)
    baseline = statistics.median(baseline_runs) if baseline_runs else None
    return Figure(
        name=name,
        unit=unit,
        value=round(value, 2),
        min=round(min(runs), 2),
        max=round(max(runs), 2),
        baseline=None if baseline is None else round(baseline, 2),
        target=target,
        met=None if check is None else bool(check(value, baseline)),
    )


def random_order(rng: random.Random, customer_id: int, now: datetime) -> Order:
    """A benchmark order: 1 to 600 USD, one of five countries, created in the hour before `now`."""
    # Imported on use, as the benchmark modules that share this did.
    from orderpipeline.core.order import Order, new_order_id

    return Order(
        order_id=new_order_id(),
        customer_id=customer_id,
        amount=rng.randint(100, 60_000) / 100,
        currency="USD",
        country=rng.choice(["US", "CA", "DE", "FR", "IN"]),
        status="CREATED",
        created_at=now - timedelta(seconds=rng.randint(0, 3600)),
    )


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MB (0 once it has exited)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started
