"""The `orderpipeline` command: every entry point answers --help, bad usage exits 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "orderpipeline"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("service", ["producer", "fraud", "payment", "analytics", "backend"])
def test_every_service_prints_help_and_exits_zero(service: str) -> None:
    result = run(service, "--help")
    assert result.returncode == 0, result.stderr
    assert f"usage: orderpipeline {service}" in result.stdout


def test_top_level_help_lists_the_services() -> None:
    result = run("--help")
    assert result.returncode == 0
    for service in ("producer", "fraud", "payment", "analytics", "backend"):
        assert service in result.stdout


def test_an_unknown_service_exits_2_with_usage() -> None:
    result = run("shipping")
    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_python_dash_m_works_too() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "orderpipeline", "fraud", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "fraud" in result.stdout


def test_an_invalid_setting_is_one_line_and_exit_code_2() -> None:
    env = {"PATH": "/usr/bin:/bin", "KAFKA_SECURITY_PROTOCOL": "BOGUS", "HEALTH_PORT": "0"}
    result = subprocess.run(
        [str(BIN), "fraud"], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 2
    errors = [line for line in result.stdout.splitlines() if '"error"' in line]
    assert len(errors) == 1 and "KAFKA_SECURITY_PROTOCOL" in errors[0]
    assert "Traceback" not in result.stderr
