"""No infrastructure process outlives the Python process that started it."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from devinfra.procs import pid_alive, wait_for

pytestmark = pytest.mark.couchbase  # starts gocaves in a child process

STARTER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from devinfra.gocaves import Gocaves
    caves = Gocaves(Path(sys.argv[1])).start()
    print(caves.process.pid, flush=True)
    time.sleep(600)
    """
)


def _start_gocaves_in_child(tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    child = subprocess.Popen(
        [sys.executable, "-c", STARTER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    gocaves_pid = int(child.stdout.readline())
    assert pid_alive(gocaves_pid)
    return child, gocaves_pid


def test_sigkilled_parent_takes_its_children_along(tmp_path: Path) -> None:
    child, gocaves_pid = _start_gocaves_in_child(tmp_path)
    child.send_signal(signal.SIGKILL)
    child.wait()
    wait_for(lambda: not pid_alive(gocaves_pid), timeout=10, what="gocaves to die with its parent")


def test_interrupted_parent_stops_its_children(tmp_path: Path) -> None:
    child, gocaves_pid = _start_gocaves_in_child(tmp_path)
    child.send_signal(signal.SIGINT)  # Ctrl-C: KeyboardInterrupt, then atexit
    child.wait(timeout=20)
    wait_for(lambda: not pid_alive(gocaves_pid), timeout=10, what="gocaves to stop on Ctrl-C")
