"""Helpers for the chart tests: render a chart with the pinned helm, parse the manifests."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHARTS = ROOT / "charts"
WEBAPP = CHARTS / "webapp"
OPERATOR = CHARTS / "orderpipeline-operator"

Manifest = dict[str, Any]


class Render(Protocol):
    def __call__(
        self,
        chart: Path,
        release: str = ...,
        values: Iterable[Path] = ...,
        sets: Mapping[str, str] = ...,
        namespace: str = ...,
    ) -> list[Manifest]: ...


class HelmRun(Protocol):
    def __call__(
        self, *args: str | Path, check: bool = ...
    ) -> subprocess.CompletedProcess[str]: ...


def ci_values(chart: Path) -> list[Path]:
    return sorted((chart / "ci").glob("*-values.yaml"))


def template_args(
    chart: Path,
    release: str,
    values: Iterable[Path],
    sets: Mapping[str, str],
    namespace: str,
) -> list[str]:
    args = ["template", release, str(chart), "--namespace", namespace]
    for path in values:
        args += ["--values", str(path)]
    for key, value in sets.items():
        args += ["--set", f"{key}={value}"]
    return args


def parse_manifests(text: str) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def by_kind(manifests: Iterable[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: Iterable[Manifest], kind: str, name_suffix: str = "") -> Manifest:
    found = [m for m in by_kind(manifests, kind) if m["metadata"]["name"].endswith(name_suffix)]
    names = [m["metadata"]["name"] for m in found]
    assert len(found) == 1, f"expected one {kind} *{name_suffix}, got {names}"
    return found[0]


def names(manifests: Iterable[Manifest], kind: str) -> list[str]:
    return [m["metadata"]["name"] for m in by_kind(manifests, kind)]


def container_env(deployment: Manifest) -> dict[str, Any]:
    """name -> value (or the valueFrom dict) of the first container's env."""
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in env}


def pod_specs(manifests: Iterable[Manifest]) -> list[tuple[str, dict[str, Any]]]:
    """(name, pod spec) of every Deployment and bare Pod (the helm test hook)."""
    specs = []
    for m in manifests:
        if m["kind"] == "Deployment":
            specs.append((m["metadata"]["name"], m["spec"]["template"]["spec"]))
        elif m["kind"] == "Pod":
            specs.append((m["metadata"]["name"], m["spec"]))
    return specs


@pytest.fixture(scope="session")
def helm_bin(toolchain: Any) -> Path:
    return Path(toolchain.helm)


@pytest.fixture(scope="session")
def helm_run(helm_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> HelmRun:
    """Runs helm with its own config/cache dirs, never touching the user's."""
    home = tmp_path_factory.mktemp("helm-home")
    env = {
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
        "PATH": "/usr/bin:/bin",
    }

    def run(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(helm_bin), *map(str, args)], capture_output=True, text=True, env=env, timeout=120
        )
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(map(str, args))} failed:\n{result.stderr}")
        return result

    return run


@pytest.fixture(scope="session")
def render(helm_run: HelmRun) -> Render:
    def _render(
        chart: Path,
        release: str = "rel",
        values: Iterable[Path] = (),
        sets: Mapping[str, str] = {},
        namespace: str = "default",
    ) -> list[Manifest]:
        result = helm_run(*template_args(chart, release, values, sets, namespace))
        return parse_manifests(result.stdout)

    return _render


@pytest.fixture(scope="session")
def render_error(helm_run: HelmRun) -> Callable[..., str]:
    """stderr of a `helm template` that must fail (asserts that it does)."""

    def _render_error(chart: Path, sets: Mapping[str, str], values: Iterable[Path] = ()) -> str:
        result = helm_run(*template_args(chart, "rel", values, sets, "default"), check=False)
        assert result.returncode != 0, f"helm template accepted {dict(sets)}"
        return result.stderr

    return _render_error
