"""The fault scenarios at the issue's sizes: `.venv/bin/python -m bench.chaos [--quick]`.

Runs tests/chaos/scenarios.py (the same code `make test-chaos` runs at small sizes) on its own
broker and gocaves, prints each scenario's figures and writes them as a table into
docs/reliability.md (between the `chaos-table` markers) and bench/results/chaos.json.
Exit code 1 when any scenario lost or double-counted something.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The scenarios live in the test tree so the tests and this benchmark run one implementation
# (`python -m bench.chaos` from the repository root imports `tests` as a package).
from tests.chaos.harness import Report
from tests.chaos.scenarios import (
    Size,
    broker_kill,
    consumer_kills,
    couchbase_outage,
    killed_in_transaction,
    producer_sigkill,
    producer_sigterm,
    rebalance,
    zombie,
)

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability.md"
RESULTS = ROOT / "bench" / "results" / "chaos.json"
BEGIN, END = "<!-- chaos-table:begin -->", "<!-- chaos-table:end -->"

FULL = {
    "broker": Size(orders=20_000, rate=500, kills=1, broker_down_s=10, settle_s=300),
    "consumers": Size(orders=20_000, rate=400, kills=5, settle_s=300, seed=6),
    "couchbase": Size(orders=20_000, rate=400, outage_s=30, settle_s=300),
    "rebalance": Size(orders=20_000, rate=400, settle_s=300),
    "producer": Size(orders=20_000, rate=5000),
    "producer-kill": Size(orders=20_000, rate=1000, settle_s=300),
    "transaction-kill": Size(orders=20_000, rate=400, settle_s=300),
    "zombie": Size(orders=20_000, rate=400, settle_s=300),
}
QUICK = {
    "broker": Size(orders=2000, rate=200, kills=1, broker_down_s=3, settle_s=120),
    "consumers": Size(orders=2000, rate=200, kills=2, settle_s=120),
    "couchbase": Size(orders=2000, rate=200, outage_s=10, settle_s=120),
    "rebalance": Size(orders=2000, rate=200, settle_s=120),
    "producer": Size(orders=3000, rate=1000),
    "producer-kill": Size(orders=2000, rate=300, settle_s=120),
    "transaction-kill": Size(orders=2000, rate=200, settle_s=120),
    "zombie": Size(orders=2000, rate=200, settle_s=120),
}

HEADER = (
    "| scenario | faults | produced (acked ids) | stored | lost (ids) | counted twice "
    "| aggregates | alerts expected / seen | payments expected / seen "
    "| duplicates in fraud-alerts | duplicates in payments | duplicates in order-analytics "
    "| time |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
)


def row(report: Report) -> str:
    stored = f"{report.stored}" if report.counted >= 0 else f"{report.stored} (in Kafka)"
    exact = "exact" if report.aggregates_exact else "WRONG: " + "; ".join(report.mismatches)
    if report.counted < 0:
        exact = "n/a"
    return (
        f"| {report.scenario} | {report.faults} | {report.produced} | {stored} | {report.lost} "
        f"| {report.counted_twice + report.in_kafka_twice} | {exact} "
        f"| {report.alerts_expected} / {report.alerts_seen} "
        f"| {report.payments_expected} / {report.payments_seen} "
        f"| {report.alerts_duplicates} | {report.payments_duplicates} "
        f"| {report.totals_duplicates} of {report.totals_records} "
        f"| {report.seconds:.0f} s |\n"
    )


def write_doc(reports: list[Report], quick: bool) -> None:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    table = (
        f"{BEGIN}\n"
        f"Measured {when} by `.venv/bin/python -m bench.chaos{' --quick' if quick else ''}` "
        f"({'quick sizes' if quick else 'full sizes'}).\n\n"
        + HEADER
        + "".join(row(r) for r in reports)
        + f"{END}"
    )
    text = DOC.read_text() if DOC.exists() else f"# Reliability\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    DOC.write_text(head + table + tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (about 5 minutes)")
    parser.add_argument("--only", nargs="*", help="scenario keys: " + ", ".join(FULL))
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL

    from devinfra.gocaves import Gocaves
    from devinfra.kafka import KafkaBroker

    reports: list[Report] = []
    failed = False
    with tempfile.TemporaryDirectory(prefix="bench-chaos-") as tmp:
        workdir = Path(tmp)
        with KafkaBroker(workdir / "kafka") as broker, Gocaves(workdir / "gocaves") as caves:

            def cluster() -> Any:
                return caves.create_cluster(bucket="order_analytics")

            runs: dict[str, Callable[[Path, Size], Report]] = {
                "broker": lambda d, s: broker_kill(broker, cluster(), d, s),
                "consumers": lambda d, s: consumer_kills(broker, cluster(), d, s),
                "couchbase": lambda d, s: couchbase_outage(broker, caves, cluster(), d, s)[0],
                "rebalance": lambda d, s: rebalance(broker, cluster(), d, s)[0],
                "producer": lambda d, s: producer_sigterm(broker, cluster(), d, s)[0],
                "producer-kill": lambda d, s: producer_sigkill(broker, cluster(), d, s),
                "transaction-kill": lambda d, s: killed_in_transaction(broker, cluster(), d, s),
                "zombie": lambda d, s: zombie(broker, cluster(), d, s),
            }
            for key, run in runs.items():
                if args.only and key not in args.only:
                    continue
                scenario_dir = workdir / key
                scenario_dir.mkdir()
                started = time.monotonic()
                try:
                    report = run(scenario_dir, sizes[key])
                except Exception:
                    traceback.print_exc()
                    report = Report(key, faults=f"ERROR after {time.monotonic() - started:.0f} s")
                print(report.line(), flush=True)
                reports.append(report)
                failed |= not report.ok()
    write_doc(reports, args.quick)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"quick": args.quick, "scenarios": [r.to_json() for r in reports]}, indent=2)
        + "\n"
    )
    print(f"wrote {DOC.relative_to(ROOT)} and {RESULTS.relative_to(ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
