"""`make up`: the whole pipeline as local processes, in the background.

A supervisor (see devinfra.daemon) starts a Kafka broker and gocaves - or uses
an external Kafka / Couchbase when KAFKA_BOOTSTRAP_SERVERS /
COUCHBASE_CONNECTION_STRING are set - creates the topics, starts producer,
fraud, payment, analytics and the backend (which serves the built dashboard),
waits until orders reach the backend, and writes the connection details to
.run/local.env. Every process dies with the supervisor; `make down` stops it
and removes the stack's state, so the next `make up` starts clean.

Settings (environment):
  ORDERPIPELINE_DASHBOARD_PORT  backend + dashboard port (default 8080)
  ORDERPIPELINE_KAFKA_PORT      local broker port (default 9092)
  PRODUCER_RATE                 orders/s of the local producer (default 10)
  KAFKA_* / COUCHBASE_*         an external broker / cluster (docs/contracts.md)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from devinfra import daemon
from devinfra.gocaves import CouchbaseCluster, Gocaves
from devinfra.kafka import KafkaBroker
from devinfra.procs import ManagedProcess, free_port, pid_alive, wait_for
from devinfra.restarts import Restarter
from devinfra.toolchain import REPO_ROOT

RUNDIR = REPO_ROOT / ".run" / "stack"
DASHBOARD = REPO_ROOT / "services" / "dashboard"
TOPICS = ["orders", "fraud-alerts", "payments", "order-analytics", "orders-dlq"]
WORKERS = ["producer", "fraud", "payment", "analytics"]
WHAT = "OrderPipeline local stack"


@dataclass
class Stack:
    rundir: Path
    dashboard_port: int = field(
        default_factory=lambda: int(os.environ.get("ORDERPIPELINE_DASHBOARD_PORT", "8080"))
    )
    kafka: KafkaBroker | None = None
    gocaves: Gocaves | None = None
    services: dict[str, ManagedProcess] = field(default_factory=dict)
    health_ports: dict[str, int] = field(default_factory=dict)
    restarter: Restarter | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    # -- infrastructure ------------------------------------------------------

    def _kafka_env(self) -> dict[str, str]:
        if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
            return {k: v for k, v in os.environ.items() if k.startswith("KAFKA_")}
        port = int(os.environ.get("ORDERPIPELINE_KAFKA_PORT", "9092"))
        self.kafka = KafkaBroker(self.rundir / "kafka", port=port).start()
        self.kafka.create_topics(TOPICS)
        return self.kafka.service_env()

    def _couchbase_env(self) -> dict[str, str]:
        if os.environ.get("COUCHBASE_CONNECTION_STRING") or os.environ.get("COUCHBASE_HOST"):
            return {k: v for k, v in os.environ.items() if k.startswith("COUCHBASE_")}
        self.gocaves = Gocaves(self.rundir / "gocaves").start()
        cluster: CouchbaseCluster = self.gocaves.create_cluster(bucket="order_analytics")
        return cluster.service_env()

    # -- services ------------------------------------------------------------

    def _service(self, name: str, env: dict[str, str]) -> ManagedProcess:
        argv = [str(Path(sys.executable).parent / "orderpipeline"), name]
        proc = ManagedProcess(
            name, argv, log_path=self.rundir / "logs" / f"{name}.log", env=env, cwd=REPO_ROOT
        )
        self.services[name] = proc
        return proc.start()

    def start(self) -> None:
        self.rundir.mkdir(parents=True, exist_ok=True)
        # The dashboard builds (seconds of node) while the broker and gocaves start. Those
        # two start here, in the main thread: a child dies with the thread that started it
        # (PR_SET_PDEATHSIG, devinfra.procs), so a worker thread must not start them.
        build = start_dashboard_build()
        try:
            base = {**os.environ, **self._kafka_env(), **self._couchbase_env(), "LOG_LEVEL": "INFO"}
        except BaseException:
            if build is not None:
                build.kill()
            raise
        dist = finish_dashboard_build(build)
        backend_env = base | {
            "BACKEND_HOST": "127.0.0.1",
            "BACKEND_PORT": str(self.dashboard_port),
            "DASHBOARD_DIST": str(dist),
        }
        self.health_ports["backend"] = self.dashboard_port
        self._service("backend", backend_env)
        for name in WORKERS:
            self.health_ports[name] = free_port()
            # Probes listen on loopback here: nothing outside this machine needs them.
            health = {"HEALTH_HOST": "127.0.0.1", "HEALTH_PORT": str(self.health_ports[name])}
            self._service(name, base | health)
        write_local_env(local_env_path(self.rundir), base, self.url)
        self._write_state()
        self.restarter = Restarter(self.services, self._write_state).start()
        wait_for(
            self._orders_visible,
            timeout=120,
            what="orders in the backend's /api/analytics",
            interval=0.5,
            alive=self._all_alive,
        )

    def _all_alive(self) -> None:
        for proc in self.services.values():
            proc.ensure_running()

    def _orders_visible(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/api/analytics", timeout=2) as resp:
            return int(json.load(resp)["totals"]["orders"]) > 0

    def _write_state(self) -> None:
        records = self.restarter.records if self.restarter else {}
        state = {
            name: {
                "pid": proc.pid,
                "health": f"http://127.0.0.1:{self.health_ports[name]}/healthz",
                "log": str(proc.log_path),
                "restarts": records[name].restarts if name in records else 0,
            }
            for name, proc in self.services.items()
        }
        for infra, proc in (("kafka", self.kafka), ("gocaves", self.gocaves)):
            if proc is not None and proc.process is not None:
                state[infra] = {
                    "pid": proc.process.pid,
                    "health": "",
                    "log": str(proc.process.log_path),
                }
        (self.rundir / "state.json").write_text(json.dumps(state, indent=2))

    def stop(self) -> None:
        if self.restarter is not None:
            self.restarter.stop()
        # Producer first, so consumers drain what it sent; backend last.
        for name in ["producer", "fraud", "payment", "analytics", "backend"]:
            if name in self.services:
                self.services[name].stop(timeout=20)
        if self.gocaves is not None:
            self.gocaves.stop()
        if self.kafka is not None:
            self.kafka.stop()


def start_dashboard_build() -> subprocess.Popen[bytes] | None:
    """`npm run build` in the background when any source is newer than dist/; None when
    dist/ is up to date."""
    sources = [p for d in ("src", "public") for p in (DASHBOARD / d).rglob("*") if p.is_file()]
    sources += [DASHBOARD / n for n in ("index.html", "package-lock.json", "vite.config.ts")]
    newest = max((p.stat().st_mtime for p in sources if p.exists()), default=0.0)
    index = DASHBOARD / "dist" / "index.html"
    if index.exists() and index.stat().st_mtime >= newest:
        return None
    return subprocess.Popen(
        ["npm", "run", "build"], cwd=DASHBOARD, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def finish_dashboard_build(build: subprocess.Popen[bytes] | None) -> Path:
    """The dashboard's dist folder, once the build (if one runs) has succeeded."""
    if build is not None:
        _, stderr = build.communicate()
        if build.returncode != 0:
            raise RuntimeError(
                f"`npm run build` in {DASHBOARD} failed:\n{stderr.decode(errors='replace')}"
            )
    return DASHBOARD / "dist"


def local_env_path(rundir: Path) -> Path:
    """`.run/local.env` beside the default `.run/stack`."""
    return rundir.parent / "local.env"


def write_local_env(path: Path, env: dict[str, str], url: str) -> None:
    keys = sorted(k for k in env if k.startswith(("KAFKA_", "COUCHBASE_")))
    lines = ["# Written by `make up`: connection details of the local stack."]
    lines += [f"{k}={env[k]}" for k in keys]
    lines.append(f"DASHBOARD_URL={url}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text("\n".join(lines) + "\n")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def status(rundir: Path) -> int:
    if not daemon.running(rundir):
        print(f"{WHAT}: stopped")
        return 1
    state = json.loads((rundir / "state.json").read_text())
    print(f"{'process':<10} {'pid':>8}  {'state':<9} {'restarts':>8}  health")
    worst = 0
    for name, info in state.items():
        alive = pid_alive(info["pid"])
        health = info["health"]
        ok = alive and (not health or _healthy(health))
        worst |= not ok
        label = ("ok" if ok else "unhealthy") if alive else "dead"
        restarts = info.get("restarts", "-")
        print(f"{name:<10} {info['pid']:>8}  {label:<9} {restarts:>8}  {health or '-'}")
    return worst


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    rundir = Path(argv[1]).resolve() if len(argv) > 1 else RUNDIR
    if command == "serve":
        stack = Stack(rundir)
        daemon.serve(rundir, stack.start, stack.stop)
    elif command == "up":
        started = time.monotonic()
        if daemon.up("devinfra.stack", rundir, WHAT):
            took = time.monotonic() - started
            print(
                f"Orders are flowing ({took:.0f} s). Dashboard: "
                f"http://127.0.0.1:{os.environ.get('ORDERPIPELINE_DASHBOARD_PORT', '8080')}"
            )
            print(f"Connection details: {local_env_path(rundir)}.")
            print(
                "`make status` shows each process, `make logs` follows them, `make down` stops all."
            )
    elif command == "down":
        daemon.down(rundir, WHAT)
        shutil.rmtree(rundir, ignore_errors=True)
        local_env_path(rundir).unlink(missing_ok=True)
    elif command == "status":
        return status(rundir)
    elif command == "logs":
        logs = sorted((rundir / "logs").glob("*.log")) + sorted((rundir / "kafka").glob("*.log"))
        if not logs:
            print(f"{WHAT} has no logs yet (is it up?)", file=sys.stderr)
            return 1
        os.execvp("tail", ["tail", "-n", "20", "-F", *map(str, logs)])
    else:
        print("usage: python -m devinfra.stack up|down|status|logs", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
