"""`make node-up` / `make node-down` as a person runs them, including after a crash.

The supervisor is the process `node-up` leaves running; SIGKILLing it is what a
crashed or killed session does. Its children die with it, but containers outlive
containerd (their shims are re-parented to init): the next `node-up` must clean
those up and start, and `node-down` must leave nothing at all on the host.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from devinfra import daemon, hostnet, nodehost
from devinfra.node import node_dirs
from devinfra.procs import pid_alive, wait_for
from devinfra.toolchain import Toolchain

pytestmark = [pytest.mark.node, pytest.mark.timeout(900)]

NODE_IMAGES = ("pause", "coredns", "traefik")


def node_cli(rundir: Path, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devinfra.node", command, str(rundir)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def supervisor_pid(rundir: Path) -> int:
    return int((rundir / "supervisor.pid").read_text())


def test_up_twice_killed_up_again_then_down_leaves_nothing(
    tmp_path: Path, node_images: list[Path]
) -> None:
    rundir = tmp_path / "node"
    rundir.mkdir()
    # Only the node's own images: the pipeline's are not needed to prove the lifecycle.
    wanted = [str(a) for a in node_images if a.stem in NODE_IMAGES]
    assert len(wanted) == len(NODE_IMAGES), node_images
    (rundir / "images.json").write_text(json.dumps(wanted))
    ip_forward_before = hostnet.IP_FORWARD.read_text().strip()
    dirs = node_dirs(rundir)

    assert daemon.up("devinfra.node", rundir, "node", timeout=600)
    first = supervisor_pid(rundir)
    again = node_cli(rundir, "up")
    assert again.returncode == 0 and "already running" in again.stdout, again
    assert supervisor_pid(rundir) == first

    os.kill(first, signal.SIGKILL)
    wait_for(lambda: not pid_alive(first), timeout=30, what="supervisor gone")
    stale = nodehost.leftovers(dirs)
    # The crash leaves running containers (CoreDNS, Traefik), mounts and rules behind.
    assert any(s.startswith("process") for s in stale), stale
    assert any(s.startswith("interface") for s in stale), stale

    assert daemon.up("devinfra.node", rundir, "node", timeout=600)
    kubeconfig = rundir / "kubeconfig"
    nodes = subprocess.run(
        [str(Toolchain.load().kubectl), "--kubeconfig", str(kubeconfig),
         "get", "nodes", "-o", "jsonpath={.items[0].status.conditions[?(@.type=='Ready')].status}"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert nodes.stdout == "True", nodes

    down = node_cli(rundir, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert nodehost.leftovers(dirs) == []
    assert hostnet.IP_FORWARD.read_text().strip() == ip_forward_before
