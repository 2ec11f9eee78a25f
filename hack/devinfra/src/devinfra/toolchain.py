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

    # The real node (`make node-up`).

    @property
    def _node_bin(self) -> Path:
        return self._component("kubernetes-node", "KUBERNETES_VERSION") / "bin"

    @property
    def kubelet(self) -> Path:
        return self._node_bin / "kubelet"

    @property
    def kube_proxy(self) -> Path:
        return self._node_bin / "kube-proxy"

    @property
    def _containerd_bin(self) -> Path:
        return self._component("containerd", "CONTAINERD_VERSION") / "bin"

    @property
    def containerd(self) -> Path:
        return self._containerd_bin / "containerd"

    @property
    def containerd_shim(self) -> Path:
        """containerd-shim-runc-v2: containerd finds it on PATH, so the node puts this
        folder first."""
        return self._containerd_bin / "containerd-shim-runc-v2"

    @property
    def ctr(self) -> Path:
        return self._containerd_bin / "ctr"

    @property
    def runc(self) -> Path:
        return self._component("runc", "RUNC_VERSION") / "bin" / "runc"

    @property
    def crictl(self) -> Path:
        return self._component("crictl", "CRICTL_VERSION") / "bin" / "crictl"

    @property
    def coredns(self) -> Path:
        return self._component("coredns", "COREDNS_VERSION") / "bin" / "coredns"

    @property
    def traefik(self) -> Path:
        return self._component("traefik", "TRAEFIK_VERSION") / "bin" / "traefik"

    @property
    def pause(self) -> Path:
        """Static; compiled from the pause.c of the pinned Kubernetes release."""
        return self._component("pause", "KUBERNETES_VERSION") / "bin" / "pause"

    @property
    def cni_bin_dir(self) -> Path:
        """Debian's containernetworking-plugins (bridge, host-local, portmap, ...)."""
        return Path("/usr/lib/cni")

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
            "kubelet": self.kubelet,
            "kube-proxy": self.kube_proxy,
            "containerd": self.containerd,
            "containerd-shim-runc-v2": self.containerd_shim,
            "ctr": self.ctr,
            "runc": self.runc,
            "crictl": self.crictl,
            "coredns": self.coredns,
            "traefik": self.traefik,
            "pause": self.pause,
            "cni-plugins": self.cni_bin_dir,
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
