"""Where `make bootstrap` put each pinned tool, read from hack/versions.env."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[4]
VERSIONS_FILE = REPO_ROOT / "hack" / "versions.env"


class ToolchainMissing(RuntimeError):
    """A component `make bootstrap` should have installed is not there."""


def read_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    versions: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            versions[key.strip()] = value.strip()
    return versions


def cache_dir() -> Path:
    return Path(os.environ.get("ORDERPIPELINE_CACHE", Path.home() / ".cache" / "orderpipeline"))


@dataclass(frozen=True)
class Toolchain:
    versions: dict[str, str]
    cache: Path

    @classmethod
    def load(cls) -> Toolchain:
        return cls(versions=read_versions(), cache=cache_dir())

    def _component(self, name: str, version_key: str) -> Path:
        return self.cache / f"{name}-{self.versions[version_key]}"

    @property
    def kafka_libs(self) -> Path:
        return self._component("kafka", "KAFKA_VERSION") / "libs"

    @property
    def gocaves(self) -> Path:
        return self._component("gocaves", "GOCAVES_VERSION") / "bin" / "gocaves"

    @property
    def _kubernetes_bin(self) -> Path:
        v = self.versions
        return self.cache / f"kubernetes-{v['KUBERNETES_VERSION']}-etcd-{v['ETCD_VERSION']}" / "bin"

    @property
    def kube_apiserver(self) -> Path:
        return self._kubernetes_bin / "kube-apiserver"

    @property
    def kube_controller_manager(self) -> Path:
        return self._kubernetes_bin / "kube-controller-manager"

    @property
    def kube_scheduler(self) -> Path:
        return self._kubernetes_bin / "kube-scheduler"

    @property
    def etcd(self) -> Path:
        return self._kubernetes_bin / "etcd"

    @property
    def kwok(self) -> Path:
        return self._component("kwok", "KWOK_VERSION") / "bin" / "kwok"

    @property
    def kwok_stages(self) -> Path:
        return self._component("kwok", "KWOK_VERSION") / "stages.yaml"

    @property
    def helm(self) -> Path:
        return self._component("helm", "HELM_VERSION") / "bin" / "helm"

    @property
    def kubectl(self) -> Path:
        return Path(sys.executable).parent / "kubectl"

    @property
    def chromium(self) -> Path:
        return Path("/usr/bin/chromium")

    @property
    def java(self) -> Path:
        found = shutil.which("java")
        return Path(found) if found else Path("java")

    def paths(self) -> dict[str, Path]:
        """Every component this project runs, by name."""
        return {
            "kafka": self.kafka_libs,
            "gocaves": self.gocaves,
            "kube-apiserver": self.kube_apiserver,
            "kube-controller-manager": self.kube_controller_manager,
            "kube-scheduler": self.kube_scheduler,
            "etcd": self.etcd,
            "kwok": self.kwok,
            "helm": self.helm,
            "kubectl": self.kubectl,
            "chromium": self.chromium,
            "java": self.java,
        }

    def require(self, *names: str) -> None:
        """Fail loudly, naming each missing component and the fix."""
        paths = self.paths()
        missing = [f"{n} (expected at {paths[n]})" for n in names if not paths[n].exists()]
        if missing:
            raise ToolchainMissing(
                "missing: " + ", ".join(missing) + ". Run `make bootstrap` to install it."
            )
