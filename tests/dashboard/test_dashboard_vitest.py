"""The dashboard's own checks (Vitest + Testing Library, tsc, eslint), run by `make test`."""

from __future__ import annotations

from .dashboard_tools import npm, output_of


def test_dashboard_component_tests_pass() -> None:
    result = npm("test")
    assert result.returncode == 0, output_of(result)
    # Vitest exits 0 on an empty run only with passWithNoTests; make sure tests ran.
    assert " passed" in result.stdout, output_of(result)


def test_dashboard_typechecks_and_lints_clean() -> None:
    result = npm("run", "lint")
    assert result.returncode == 0, output_of(result)
