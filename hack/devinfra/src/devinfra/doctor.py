"""`make doctor`: one line per component - pinned version, found version, path, OK/MISSING."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devinfra.toolchain import Toolchain


@dataclass(frozen=True)
class Check:
    name: str
    pinned: str
    path: Path
    #: Reports the version actually installed, or "" when it cannot be found.
    found: Callable[[Path], str]


def _run_version(*args: str, pattern: str = r"v?\d+\.\d+(\.\d+)?") -> Callable[[Path], str]:
    def probe(path: Path) -> str:
        try:
            out = subprocess.run([str(path), *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        match = re.search(pattern, out.stdout + out.stderr)
        return match.group(0) if match else ""

    return probe


def _jar_version(path: Path) -> str:
    jars = sorted(path.glob("kafka_2.13-*.jar"))
    return jars[0].stem.removeprefix("kafka_2.13-") if jars else ""


def _exists(path: Path) -> str:
    return "built" if path.exists() else ""


def _debian_package(package: str) -> Callable[[Path], str]:
    """The upstream part of an installed Debian package's version: "1:1.4.7-1+b2" -> "1.4.7"."""

    def probe(_path: Path) -> str:
        try:
            out = subprocess.run(
                ["dpkg-query", "-W", "-f=${Version}", package],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        match = re.match(r"(?:\d+:)?([^-+~]+)", out.stdout) if out.returncode == 0 else None
        return match.group(1) if match else ""

    return probe


#: Debian packages of the real node (bootstrap's node-packages step), with a file each installs.
_NODE_PACKAGES = (
    ("iptables", Path("/usr/sbin/iptables")),
    ("nftables", Path("/usr/sbin/nft")),
    ("conntrack", Path("/usr/sbin/conntrack")),
    ("buildah", Path("/usr/bin/buildah")),
    ("debootstrap", Path("/usr/sbin/debootstrap")),
    ("libseccomp-dev", Path("/usr/include/seccomp.h")),
)


def checks(tc: Toolchain) -> list[Check]:
    v = tc.versions
    return [
        Check("python", "3.11", Path(sys.executable), _run_version("--version")),
        Check("java", "17", tc.java, _run_version("-version", pattern=r"\d+\.\d+\.\d+")),
        Check("kafka", v["KAFKA_VERSION"], tc.kafka_libs, _jar_version),
        Check("gocaves", v["GOCAVES_VERSION"], tc.gocaves, _exists),
        Check("etcd", v["ETCD_VERSION"], tc.etcd, _run_version("--version")),
        Check(
            "kube-apiserver", v["KUBERNETES_VERSION"], tc.kube_apiserver, _run_version("--version")
        ),
        Check(
            "kube-controller-manager",
            v["KUBERNETES_VERSION"],
            tc.kube_controller_manager,
            _run_version("--version"),
        ),
        Check(
            "kube-scheduler", v["KUBERNETES_VERSION"], tc.kube_scheduler, _run_version("--version")
        ),
        Check("kwok", v["KWOK_VERSION"], tc.kwok, _run_version("--version")),
        Check("kwok stages", v["KWOK_VERSION"], tc.kwok_stages, _exists),
        Check("helm", v["HELM_VERSION"], tc.helm, _run_version("version", "--short")),
        Check("kubelet", v["KUBERNETES_VERSION"], tc.kubelet, _run_version("--version")),
        Check("kube-proxy", v["KUBERNETES_VERSION"], tc.kube_proxy, _run_version("--version")),
        Check("containerd", v["CONTAINERD_VERSION"], tc.containerd, _run_version("--version")),
        Check(
            "containerd-shim-runc-v2",
            v["CONTAINERD_VERSION"],
            tc.containerd_shim,
            _run_version("-v"),
        ),
        Check("ctr", v["CONTAINERD_VERSION"], tc.ctr, _run_version("--version")),
        Check("runc", v["RUNC_VERSION"], tc.runc, _run_version("--version")),
        Check("crictl", v["CRICTL_VERSION"], tc.crictl, _run_version("--version")),
        Check("coredns", v["COREDNS_VERSION"], tc.coredns, _run_version("-version")),
        Check("traefik", v["TRAEFIK_VERSION"], tc.traefik, _run_version("version")),
        # pause reports only its image tag (3.10-local); its source is the Kubernetes release.
        Check("pause", v["KUBERNETES_VERSION"], tc.pause, _exists),
        Check(
            "cni-plugins",
            "Debian",
            tc.cni_bin_dir,
            _debian_package("containernetworking-plugins"),
        ),
        *(Check(name, "Debian", path, _debian_package(name)) for name, path in _NODE_PACKAGES),
        Check("kubectl", "1.37", tc.kubectl, _run_version("version", "--client")),
        Check("chromium", "Debian", tc.chromium, _run_version("--version")),
        Check(
            "node",
            "20",
            Path("/usr/bin/node")
            if Path("/usr/bin/node").exists()
            else Path(
                subprocess.run(["which", "node"], capture_output=True, text=True).stdout.strip()
                or "node"
            ),
            _run_version("--version"),
        ),
    ]


def _matches(pinned: str, found: str) -> bool:
    if not found:
        return False
    if found == "built" or pinned == "Debian":
        return True
    return found.lstrip("v").startswith(pinned.lstrip("v"))


def main() -> int:
    tc = Toolchain.load()
    ok = True
    print(f"{'component':<24} {'pinned':<12} {'found':<12} {'status':<8} path")
    for check in checks(tc):
        found = check.found(check.path) if check.path.exists() else ""
        good = _matches(check.pinned, found)
        ok &= good
        status = "OK" if good else ("MISSING" if not found else "MISMATCH")
        print(f"{check.name:<24} {check.pinned:<12} {found or '-':<12} {status:<8} {check.path}")
    if not ok:
        print(
            "\nSome components are missing or differ from hack/versions.env: run `make bootstrap`."
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
