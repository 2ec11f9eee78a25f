"""Fixtures shared by the services' integration tests (the broker fixtures are in tests/)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .helpers import Service


@pytest.fixture
def services() -> Iterator[list[Service]]:
    """Started services, killed at the end if a test left one running."""
    started: list[Service] = []
    yield started
    for service in started:
        service.close()
