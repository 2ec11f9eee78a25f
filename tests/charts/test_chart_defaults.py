"""Every chart in charts/ with nothing but its own defaults, as chart-testing lints it."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import CHARTS, OPERATOR, WEBAPP, HelmRun

EVERY_CHART = sorted(chart.parent for chart in CHARTS.glob("*/Chart.yaml"))


def test_every_chart_is_found() -> None:
    # Guards the parametrized test below against passing on an empty list.
    assert {WEBAPP, OPERATOR} <= set(EVERY_CHART)


@pytest.mark.parametrize("chart", EVERY_CHART, ids=lambda p: p.name)
def test_lint_strict_passes_with_the_default_values(helm_run: HelmRun, chart: Path) -> None:
    result = helm_run("lint", "--strict", chart)
    assert "0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout
