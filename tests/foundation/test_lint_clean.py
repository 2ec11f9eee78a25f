"""`make lint-python` passes: ruff, the import contracts (pyproject.toml), strict mypy (src,
then bench and the `tests` package in one run).

Run from `make test` so that CI refuses code that does not type-check; the dashboard's
eslint + tsc (the rest of `make lint`) run in tests/dashboard/test_dashboard_vitest.py.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def test_python_is_ruff_contract_and_strict_mypy_clean(repo_root: Path) -> None:
    lint = subprocess.run(
        ["make", "-s", "lint-python"], cwd=repo_root, capture_output=True, text=True, timeout=300
    )
    assert lint.returncode == 0, lint.stdout[-4000:] + lint.stderr[-4000:]
