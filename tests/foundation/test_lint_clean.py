"""`make lint` passes: ruff, strict mypy (src, bench, every tests/ directory), eslint + tsc.

Run from `make test` so that CI refuses code that does not type-check.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def test_make_lint_passes(repo_root: Path) -> None:
    lint = subprocess.run(
        ["make", "-s", "lint"], cwd=repo_root, capture_output=True, text=True, timeout=300
    )
    assert lint.returncode == 0, lint.stdout[-4000:] + lint.stderr[-4000:]
