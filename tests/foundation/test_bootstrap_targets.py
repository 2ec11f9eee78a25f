"""Each make target bootstraps the components it uses and no others (hack/bootstrap.sh's names).

`make up` on a fresh machine must not wait for the Kubernetes build; `make test` needs
everything; a make that a test runs inside `make test` must not bootstrap (nor re-sync the
virtualenv pytest runs from). Read from `make -n`, so nothing is installed here.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

BOOTSTRAP = re.compile(r"^bash hack/bootstrap\.sh(?P<names>( [a-z-]+)*)\s*$", re.M)


def _bootstrap_calls(repo_root: Path, target: str, **env: str) -> list[list[str]]:
    """The component lists of every bootstrap `make TARGET` would run ([] = everything)."""
    environ = {k: v for k, v in os.environ.items() if k != "ORDERPIPELINE_BOOTSTRAPPED"}
    dry = subprocess.run(
        ["make", "-n", target],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=60,
        env=environ | env,
    )
    assert dry.returncode == 0, dry.stderr
    return [m["names"].split() for m in BOOTSTRAP.finditer(dry.stdout)]


def _components(repo_root: Path) -> set[str]:
    """The names hack/bootstrap.sh knows: every lane's steps."""
    script = (repo_root / "hack" / "bootstrap.sh").read_text()
    lanes = re.search(r"^LANES=\((.*?)^\)", script, re.M | re.S)
    assert lanes is not None
    return {name for lane in re.findall(r'"[a-z]+:([^"]*)"', lanes[1]) for name in lane.split()}


def test_make_up_bootstraps_only_the_local_stack(repo_root: Path) -> None:
    assert _bootstrap_calls(repo_root, "up") == [["python", "kafka", "gocaves", "dashboard"]]


def test_cluster_up_bootstraps_the_control_plane_not_the_stack(repo_root: Path) -> None:
    assert _bootstrap_calls(repo_root, "cluster-up") == [["python", "kubernetes", "kwok", "helm"]]


def test_make_test_and_bootstrap_install_everything(repo_root: Path) -> None:
    assert _bootstrap_calls(repo_root, "test") == [[]]
    assert _bootstrap_calls(repo_root, "bootstrap") == [[]]


@pytest.mark.parametrize(
    "target",
    ["up", "cluster-up", "lint", "lint-python", "test-unit", "test-chaos", "bench-chaos", "audit"],
)
def test_every_component_a_target_names_exists(repo_root: Path, target: str) -> None:
    calls = _bootstrap_calls(repo_root, target)
    assert calls, f"make {target} runs no bootstrap"
    for names in calls:
        assert names, f"make {target} bootstraps everything; it should name what it uses"
        assert set(names) <= _components(repo_root), names


@pytest.mark.parametrize("target", ["lint-python", "test-unit", "up", "node-up"])
def test_a_make_inside_make_test_does_not_bootstrap(repo_root: Path, target: str) -> None:
    assert _bootstrap_calls(repo_root, target, ORDERPIPELINE_BOOTSTRAPPED="1") == []
