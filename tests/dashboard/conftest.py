"""Fixtures of the dashboard tests: the built page and a real headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from .dashboard_tools import npm, output_of


@pytest.fixture(scope="session")
def dashboard_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dashboard built from the working tree, into a folder of this test session."""
    out = tmp_path_factory.mktemp("dashboard-dist")
    result = npm("run", "build", "--", "--outDir", str(out), "--emptyOutDir")
    assert result.returncode == 0, output_of(result)
    assert (out / "index.html").is_file(), output_of(result)
    return out


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
