"""Every `make` command the README shows exists, once, in the Makefile."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


def _readme_targets(repo_root: Path) -> set[str]:
    text = (repo_root / "README.md").read_text()
    return set(re.findall(r"`make ([a-z][a-z-]*)", text)) | set(
        re.findall(r"^make ([a-z][a-z-]*)", text, flags=re.M)
    )


def test_readme_make_targets_exist_without_overrides(repo_root: Path) -> None:
    targets = _readme_targets(repo_root)
    assert {"up", "down", "test", "bootstrap", "doctor", "cluster-up"} <= targets
    for target in sorted(targets):
        dry = subprocess.run(
            ["make", "-n", target], cwd=repo_root, capture_output=True, text=True, timeout=60
        )
        assert dry.returncode == 0, f"make {target}: {dry.stderr}"
        assert "overriding recipe" not in dry.stderr, dry.stderr


def test_ci_runs_exactly_the_readme_test_command(repo_root: Path) -> None:
    ci = (repo_root / ".ci" / "run").read_text()
    commands = [
        line for line in ci.splitlines() if line and not line.startswith(("#", "set ", "cd "))
    ]
    assert commands == ["make test"]
