"""`make bootstrap` installed every pinned tool, at its pinned version, and runs again as a no-op.

`make test` runs bootstrap first, so these fail only when bootstrap.sh, hack/versions.env,
devinfra.toolchain and devinfra.doctor disagree about a component.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from devinfra.toolchain import Toolchain

pytestmark = pytest.mark.toolchain

NODE_COMPONENTS = (
    "kubelet",
    "kube-proxy",
    "containerd",
    "containerd-shim-runc-v2",
    "ctr",
    "runc",
    "crictl",
    "coredns",
    "traefik",
    "pause",
    "cni-plugins",
)


def test_every_component_is_installed(toolchain: Toolchain) -> None:
    assert set(NODE_COMPONENTS) <= set(toolchain.paths())
    toolchain.require(*toolchain.paths())


def test_doctor_finds_every_pinned_version(repo_root: Path) -> None:
    doctor = subprocess.run(
        [sys.executable, "-m", "devinfra.doctor"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    listed = {line.split()[0] for line in doctor.stdout.splitlines()[1:] if line.strip()}
    assert set(NODE_COMPONENTS) <= listed


def test_second_bootstrap_builds_nothing(repo_root: Path) -> None:
    run = subprocess.run(
        ["bash", "hack/bootstrap.sh"], cwd=repo_root, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    steps = re.findall(r"==> (.*?)\x1b", run.stdout)
    # The Python environment is keyed like the rest: uv does not even run (and so never
    # touches the virtualenv this test runs from).
    assert steps == [], run.stdout
