"""The benchmark harness: `.venv/bin/python -m bench.run [--quick] [--only MODULE...]` from the
repository root.

Starts its own Kafka broker and gocaves (devinfra), runs every benchmark module (bench/workers.py,
bench/analytics.py, bench/backend.py, bench/operator.py, bench/stack.py, bench/node.py), and writes
bench/results/latest.json ({"machine", "versions", "figures"}) and bench/results/latest.md.
Each figure is the median of 3 runs (1 with --quick) next to its baseline from the same run.
`--only bench.node` runs the named modules and replaces just their figures in latest.json
(`make bench ONLY=bench.node`), keeping the others from the last full run.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import tempfile
import time
import traceback
from dataclasses import replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.common import BenchEnv, Figure

RESULTS = Path(__file__).parent / "results"
MODULES = (
    "bench.workers",
    "bench.analytics",
    "bench.backend",
    "bench.operator",
    "bench.stack",
    "bench.node",
    "bench.node_autoscaling",
)


def machine() -> dict[str, Any]:
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "note": "broker, gocaves, services and load generator share this machine",
    }


def versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for package in ("orderpipeline", "confluent-kafka", "couchbase", "pydantic", "fastapi"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[package] = metadata.version(package)
    try:
        import confluent_kafka

        found["librdkafka"] = confluent_kafka.libversion()[0]
    except ImportError:
        pass
    try:
        from devinfra.toolchain import read_versions

        found |= {k.lower(): v for k, v in read_versions().items() if k.endswith("_VERSION")}
    except Exception:
        pass
    return found


def markdown(figures: list[Figure]) -> str:
    lines = [
        "| figure | value (median) | min | max | baseline | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        baseline = "—" if f.baseline is None else f"{f.baseline:,.2f}"
        met = {True: "yes", False: "**no**", None: "—"}[f.met]
        lines.append(
            f"| {f.name} | {f.value:,.2f} {f.unit} | {f.min:,.2f} | {f.max:,.2f} | {baseline} "
            f"| {f.target} | {met} |"
        )
    return "\n".join(lines) + "\n"


def collect(env: BenchEnv, quick: bool, modules: tuple[str, ...] = MODULES) -> list[Figure]:
    figures: list[Figure] = []
    for name in modules:
        print(f"{name}:", flush=True)
        started = time.monotonic()
        # A module that cannot be imported or fails is a failed figure (and exit code 1),
        # never a skip: every module in MODULES is part of the benchmark.
        try:
            measured = importlib.import_module(name).measure(env, quick)
        except Exception:
            traceback.print_exc()
            measured = [Figure(f"{name} failed", "", 0, 0, 0, None, "runs", False)]
        figures += [replace(f, module=name) for f in measured]
        print(f"{name}: {time.monotonic() - started:.0f}s", flush=True)
    return figures


def merged(last: dict[str, Any], new: dict[str, Any], modules: list[str]) -> dict[str, Any]:
    """The last run's figures with those of `new` replacing the ones of the same name, and
    without the re-run modules' other figures (a figure renamed since must not linger)."""
    names = {f["name"] for f in new["figures"]}
    kept = [
        f
        for f in last.get("figures", [])
        if f["name"] not in names and f.get("module") not in modules
    ]
    order = {module: i for i, module in enumerate(MODULES)}
    figures = sorted(kept + new["figures"], key=lambda f: order.get(f.get("module") or "", 0))
    # When each module's figures were measured, if not by the last full run.
    partial = {
        key: when
        for key, when in last.get("partial_updates", {}).items()
        if not set(key.split(",")) <= set(modules)
    }
    partial[",".join(modules)] = new["generated_at"]
    return {**last, "figures": figures, "partial_updates": partial}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1 run instead of 3, smaller loads")
    parser.add_argument(
        "--only", nargs="+", choices=MODULES, help="run these modules, keep the other figures"
    )
    args = parser.parse_args()

    from devinfra.gocaves import Gocaves
    from devinfra.kafka import KafkaBroker

    with tempfile.TemporaryDirectory(prefix="orderpipeline-bench-") as tmp:
        workdir = Path(tmp)
        (workdir / "kafka").mkdir()
        (workdir / "gocaves").mkdir()
        (workdir / "runs").mkdir()
        with KafkaBroker(workdir / "kafka") as broker, Gocaves(workdir / "gocaves") as caves:
            env = BenchEnv(
                workdir=workdir / "runs",
                bootstrap_servers=broker.bootstrap_servers,
                kafka_client_config=broker.client_config(),
                kafka_env={
                    "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
                    "KAFKA_SECURITY_PROTOCOL": broker.security_protocol,
                },
                new_couchbase=caves.create_cluster,
            )
            figures = collect(env, args.quick, tuple(args.only or MODULES))

    RESULTS.mkdir(exist_ok=True)
    result = {
        "machine": machine(),
        "versions": versions(),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "runs": 1 if args.quick else 3,
        "figures": [f.to_json() for f in figures],
    }
    shown = figures
    if args.only and (RESULTS / "latest.json").exists():
        result = merged(json.loads((RESULTS / "latest.json").read_text()), result, args.only)
        shown = [Figure(**f) for f in result["figures"]]
    (RESULTS / "latest.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "latest.md").write_text(markdown(shown))
    print(markdown(shown))
    # Only this run's figures decide the exit code.
    return 0 if all(f.met is not False for f in figures) else 1


if __name__ == "__main__":
    raise SystemExit(main())
