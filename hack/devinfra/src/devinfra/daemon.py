"""Run a supervisor in the background for a person: `up` returns, `down` stops it.

`up` starts `python -m <module> serve <rundir>` in a new session and waits until
that process writes `<rundir>/ready` (or dies, showing its log). The supervisor
starts its children with parent-death signals, so stopping it - even with
SIGKILL - takes every child with it. A second `up` finds the live pid file and
does nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from devinfra.procs import pid_alive


def _pid(rundir: Path) -> int | None:
    try:
        pid = int((rundir / "supervisor.pid").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def running(rundir: Path) -> bool:
    return _pid(rundir) is not None and (rundir / "ready").exists()


def up(module: str, rundir: Path, what: str, timeout: float = 600.0) -> bool:
    """Start the supervisor unless it runs already; True when it was started."""
    if _pid(rundir) is not None:
        print(f"{what} is already running (pid {_pid(rundir)}, {rundir}).")
        return False
    rundir.mkdir(parents=True, exist_ok=True)
    (rundir / "ready").unlink(missing_ok=True)
    log = rundir / "supervisor.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "serve", str(rundir)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while not (rundir / "ready").exists():
        if proc.poll() is not None:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            raise SystemExit(f"{what} failed to start (log: {log}):\n{tail}")
        if time.monotonic() > deadline:
            proc.terminate()
            raise SystemExit(f"{what} not ready after {timeout:.0f} s (log: {log})")
        time.sleep(0.3)
    return True


def down(rundir: Path, what: str, timeout: float = 60.0) -> None:
    pid = _pid(rundir)
    if pid is None:
        print(f"{what} is not running.")
        return
    os.kill(pid, signal.SIGTERM)
    # Wait for the process itself, not its pid file: the supervisor removes the
    # file a moment before the interpreter exits.
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if pid_alive(pid):
        os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    print(f"{what} stopped.")


def serve(rundir: Path, start: Callable[[], None], stop: Callable[[], None]) -> None:
    """The supervisor's body: start, mark ready, wait for SIGTERM/SIGINT, stop."""
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    (rundir / "supervisor.pid").write_text(str(os.getpid()))
    try:
        start()
        (rundir / "ready").write_text("ok\n")
        stopping.wait()
    finally:
        stop()
        (rundir / "ready").unlink(missing_ok=True)
        (rundir / "supervisor.pid").unlink(missing_ok=True)
