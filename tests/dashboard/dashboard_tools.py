"""Paths, commands and page selectors shared by the dashboard tests (a module name no other
folder uses)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from devinfra.dashboard_page import KPI_FIELDS, ROW_IDS

__all__ = ["KPI_FIELDS", "ROW_IDS"]

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "services" / "dashboard"
ARTIFACTS = REPO / "test-artifacts"


def npm(
    *args: str, timeout: float = 300, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run npm in services/dashboard (`stdin` as its input); fail with a hint when its
    dependencies are missing."""
    if shutil.which("npm") is None:
        pytest.fail("npm is not installed: Node.js 20 with npm is required (make bootstrap)")
    if not (DASHBOARD / "node_modules").is_dir():
        pytest.fail("services/dashboard/node_modules is missing: run `make bootstrap` (npm ci)")
    env = os.environ | {"CI": "true", "NO_COLOR": "1", "FORCE_COLOR": "0"}
    return subprocess.run(
        ["npm", *args],
        cwd=DASHBOARD,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def output_of(result: subprocess.CompletedProcess[str], chars: int = 6000) -> str:
    return f"exit {result.returncode}\n{result.stdout[-chars:]}\n{result.stderr[-chars:]}"
