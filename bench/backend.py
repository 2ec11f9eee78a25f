"""Backend `/api/analytics` at 100 concurrent keep-alive connections: p99 latency and req/s
(targets: p99 <= 7 ms, >= 25k req/s, issue 13), next to the baseline that opens a Couchbase
connection per request (bench/baseline/backend_baseline.py).

Both servers run as their own processes against the same gocaves data (aggregates of a few
thousand orders written with the analytics store). The requests are the dashboard's polls as
a browser sends them (Accept-Encoding: gzip, ...): the targets apply to those; the same load
without Accept-Encoding (the body uncompressed, 8x larger) is reported beside them. The load
generator is a separate process
(asyncio + uvloop over raw HTTP/1.1 sockets, so that the client costs little CPU) which
keeps 100 requests in flight for a fixed duration and records every latency.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import BenchEnv, Figure, random_order, rss_mb, summarize

BIN = Path(sys.executable).parent / "orderpipeline"
PATH = "/api/analytics"
CONNECTIONS = 100


# --- load generator (runs in a child process) --------------------------------------------------


def get(path: str, *headers: str) -> bytes:
    """An HTTP/1.1 GET request of `path`, with `headers` ("Name: value")."""
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# What a browser's fetch() sends about encodings: the dashboard's polls are these.
BROWSER = "Accept-Encoding: gzip, deflate, br, zstd"


async def _connection(
    port: int, request: bytes, deadline: float, latencies: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            if head.startswith(b"HTTP/1.1 200"):
                latencies.append(time.perf_counter() - started)
            else:
                errors.append(1)
    finally:
        writer.close()


async def _load(port: int, request: bytes, seconds: float) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors: list[int] = []
    deadline = time.perf_counter() + seconds
    results = await asyncio.gather(
        *(_connection(port, request, deadline, latencies, errors) for _ in range(CONNECTIONS)),
        return_exceptions=True,
    )
    failed = sum(1 for r in results if isinstance(r, BaseException))
    return latencies, len(errors) + failed


def _load_process(port: int, request: bytes, seconds: float, out: Any) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    started = time.perf_counter()
    latencies, errors = asyncio.run(_load(port, request, seconds))
    out.send((latencies, errors, time.perf_counter() - started))


def load(port: int, request: bytes, seconds: float) -> tuple[float, float, int]:
    """(requests/s, p99 latency in ms, errors) over `seconds` at CONNECTIONS in flight, each
    connection sending `request` again as soon as the last answer is in."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_load_process, args=(port, request, seconds, sender))
    process.start()
    if not receiver.poll(seconds + 60):
        process.kill()
        raise RuntimeError("the load generator did not report")
    latencies, errors, elapsed = receiver.recv()
    process.join(30)
    if not latencies:
        return 0.0, float("inf"), errors
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return len(latencies) / elapsed, p99 * 1000, errors


# --- servers -----------------------------------------------------------------------------------


def _free_port() -> int:
    from devinfra.procs import free_port

    port: int = free_port()
    return port


def _seed(cluster: Any, orders: int) -> list[str]:
    """Partition aggregates and order documents of `orders` orders; returns their ids."""
    from orderpipeline.core.aggregate import PartitionAggregate, Record, apply_batch
    from orderpipeline.core.aggregate_store import AnalyticsStore, PartitionId

    rng = random.Random(2)
    now = datetime.now(UTC)
    made = [random_order(rng, i, now) for i in range(orders)]
    sdk = cluster.connect()
    try:
        collection = sdk.bucket(cluster.bucket).default_collection()
        store = AnalyticsStore(collection)
        for p in range(3):
            part = made[p::3]
            records = [
                Record(i, o, "HIGH_AMOUNT_RISKY_COUNTRY" if o.amount > 300 else None)
                for i, o in enumerate(part)
            ]
            store.save(PartitionId("orders", p), apply_batch(PartitionAggregate(), records), None)
        store.write_manifest({"orders": 3})
        collection.upsert_multi({o.order_id: o.model_dump(mode="json") for o in made[:10]})
    finally:
        sdk.close()
    return [o.order_id for o in made[:10]]


def _wait_ready(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            url = f"http://127.0.0.1:{port}/api/analytics"
            with urllib.request.urlopen(url, timeout=10) as response:
                if response.status == 200 and b'"orders"' in response.read():
                    return
        except OSError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.2)
    raise RuntimeError(f"server on {port} not ready:\n{log.read_text()[-2000:]}")


def _serve(
    env: BenchEnv, argv: list[str], extra_env: dict[str, str], port: int
) -> tuple[subprocess.Popen[bytes], Path]:
    log = env.workdir / f"backend-{uuid.uuid4().hex[:6]}.log"
    full_env = {**env.service_env(), **extra_env}
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=full_env, stdout=out, stderr=out, cwd=os.getcwd())
    _wait_ready(port, process, log)
    return process, log


@dataclass
class Served:
    """One run of our backend: the load a browser's polls make, then the same without an
    Accept-Encoding header."""

    rate: float
    p99: float
    identity_rate: float
    identity_p99: float
    rss: float
    errors: int


def run_ours(env: BenchEnv, cluster: Any, seconds: float) -> Served:
    port = _free_port()
    process, _ = _serve(
        env,
        [str(BIN), "backend"],
        {**cluster.service_env(), "BACKEND_PORT": str(port), "BACKEND_HOST": "127.0.0.1"},
        port,
    )
    try:
        rate, p99, errors = load(port, get(PATH, BROWSER), seconds)
        identity_rate, identity_p99, identity_errors = load(port, get(PATH), seconds)
        return Served(
            rate, p99, identity_rate, identity_p99, rss_mb(process.pid), errors + identity_errors
        )
    finally:
        process.terminate()
        process.wait(30)


def run_baseline(env: BenchEnv, cluster: Any, ids: list[str], seconds: float) -> float:
    port = _free_port()
    process, _ = _serve(
        env,
        [sys.executable, "-m", "bench.baseline.backend_baseline", str(port)],
        {**cluster.service_env(), "BASELINE_ORDER_IDS": ",".join(ids)},
        port,
    )
    try:
        rate, _p99, _errors = load(port, get(PATH, BROWSER), seconds)
        return rate
    finally:
        process.terminate()
        process.wait(30)


def measure(env: BenchEnv, quick: bool) -> list[Figure]:
    runs = 1 if quick else 3
    seconds = 5.0 if quick else 10.0
    cluster = env.new_couchbase()  # type: ignore[misc]
    ids = _seed(cluster, 3000)
    served: list[Served] = []
    baseline: list[float] = []
    for _ in range(runs):
        served.append(run_ours(env, cluster, seconds))
        baseline.append(run_baseline(env, cluster, ids, seconds))
        run = served[-1]
        print(
            f"  backend {run.rate:,.0f} req/s p99 {run.p99:.1f} ms"
            f" (no Accept-Encoding: {run.identity_rate:,.0f} req/s p99 {run.identity_p99:.1f} ms);"
            f" baseline {baseline[-1]:,.1f} req/s"
        )
    return [
        summarize(
            "backend /api/analytics p99 at 100 connections",
            "ms",
            [run.p99 for run in served],
            None,
            "<= 7",
            lambda value, _base: value <= 7,
        ),
        summarize(
            "backend /api/analytics req/s at 100 connections",
            "req/s",
            [run.rate for run in served],
            baseline,
            ">= 25000 and >= 20x baseline",
            lambda value, base: base is not None and value >= max(25_000, 20 * base),
        ),
        # Reported: clients that do not accept gzip get the 8x larger body.
        summarize(
            "backend /api/analytics p99, no Accept-Encoding",
            "ms",
            [run.identity_p99 for run in served],
            None,
            "reported",
            None,
        ),
        summarize(
            "backend /api/analytics req/s, no Accept-Encoding",
            "req/s",
            [run.identity_rate for run in served],
            None,
            "reported",
            None,
        ),
        summarize(
            "RSS: backend",
            "MB",
            [run.rss for run in served],
            None,
            "< 150",
            lambda value, _base: value < 150,
        ),
        # Throughput and latency count answered requests only: a failed one must fail the run.
        summarize(
            "backend /api/analytics failed requests (worst run)",
            "requests",
            [max(run.errors for run in served)],
            None,
            "0",
            lambda value, _base: value == 0,
        ),
    ]
