"""A real one-node Kubernetes on this machine: `make node-up` / `make node-down`.

The project's control plane (etcd, kube-apiserver, controller-manager,
scheduler) plus a real kubelet running containers through containerd and runc,
pods on a CNI bridge, Services through kube-proxy (nftables), CoreDNS and the
Traefik ingress controller as pods - every binary and image built from package
registries by `make bootstrap` / `make images`, nothing pulled.

Configured as kubeadm configures a node: the kubelet authenticates as
`system:node:<name>` (Node authorizer + NodeRestriction), serves a certificate
the API server verifies, accepts only authenticated and authorised callers
(webhook), has no read-only port; the API server reaches it by InternalIP;
pods get cluster DNS only. Needs root (bridges, mounts, cgroups, nftables).

`python -m devinfra.node up|down|status|leftovers` (the Makefile's node-* targets).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import yaml

from devinfra import hostnet, nodehost
from devinfra.cluster import LocalCluster
from devinfra.nodeconfig import (
    APISERVER_PORT,
    CGROUP_ROOT,
    CLOSED_REGISTRY_HOSTS,
    CLUSTER_DOMAIN,
    INGRESS_PORT,
    KUBERNETES_SERVICE_IP,
    NODE_IP,
    NODE_NAME,
    POD_CIDR,
    SERVICE_CIDR,
    NodeDirs,
    cert_kubeconfig,
    cni_conflist,
    containerd_config,
    kube_proxy_config,
    kubelet_config,
)
from devinfra.pki import CertificateAuthority
from devinfra.procs import ManagedProcess, wait_for
from devinfra.tls import ServerTLS, make_signing_key
from devinfra.toolchain import REPO_ROOT, Toolchain

RUNDIR = REPO_ROOT / ".run" / "node"
ADDONS = REPO_ROOT / "hack" / "node" / "addons"
WHAT = "real Kubernetes node"
#: OCI archives to import, each named with its full image reference.
Images = Sequence[Path]
#: Namespaces where every pod must meet the restricted Pod Security Standard (the
#: ingress controller's own namespace says so in hack/node/addons/traefik.yaml).
RESTRICTED_NAMESPACES = ("default", "kube-system")
INGRESS_NAMESPACE = "traefik"
INGRESS_SERVICE = "traefik"


def node_dirs(root: Path) -> NodeDirs:
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:10]
    return NodeDirs(
        root=root.resolve(), state=nodehost.STATE_PARENT / f"{nodehost.STATE_PREFIX}{digest}"
    )


def _without(args: list[str | Path], *flags: str) -> list[str | Path]:
    return [a for a in args if str(a).split("=", 1)[0] not in flags]


class NodeControlPlane(LocalCluster):
    """The control plane on the node address, with the flags a kubelet node needs."""

    def __init__(self, workdir: Path, ca: CertificateAuthority, toolchain: Toolchain) -> None:
        super().__init__(workdir, toolchain)
        self.ca = ca
        self.apiserver_port = APISERVER_PORT

    @property
    def server(self) -> str:
        return f"https://{NODE_IP}:{APISERVER_PORT}"

    def _prepare(self) -> None:
        pki = self.workdir / "pki"
        serving = self.ca.issue(
            "apiserver",
            "kube-apiserver",
            dns_names=(
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                f"kubernetes.default.svc.{CLUSTER_DOMAIN}",
            ),
            ip_addresses=(NODE_IP, KUBERNETES_SERVICE_IP, "127.0.0.1"),
            server=True,
        )
        self.tls = ServerTLS(
            ca_pem=self.ca.cert_path,
            cert_pem=serving.cert,
            key_pem=serving.key,
            keystore_pem=serving.key,
        )
        # The API server's identity towards kubelets (kubeadm's name for it).
        self.kubelet_client = self.ca.issue(
            "apiserver-kubelet-client", "kube-apiserver-kubelet-client", client=True
        )
        self.sa_key, self.sa_pub = make_signing_key(pki)
        self._write_admin_access()
        self._prepared = True

    def _apiserver_args(self) -> list[str | Path]:
        args = _without(
            super()._apiserver_args(),
            "--bind-address",
            "--advertise-address",
            "--service-cluster-ip-range",
            "--authorization-mode",
            "--endpoint-reconciler-type",
        )
        return [
            *args,
            f"--bind-address={NODE_IP}",
            f"--advertise-address={NODE_IP}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            f"--kubelet-client-certificate={self.kubelet_client.cert}",
            f"--kubelet-client-key={self.kubelet_client.key}",
            f"--kubelet-certificate-authority={self.ca.cert_path}",
            # By hostname it would ask the machine's resolver for the node's name.
            "--kubelet-preferred-address-types=InternalIP",
        ]

    def _controller_manager_args(self) -> list[str | Path]:
        args = _without(super()._controller_manager_args(), "--service-cluster-ip-range")
        return [*args, f"--service-cluster-ip-range={SERVICE_CIDR}", f"--cluster-cidr={POD_CIDR}"]


class RealNode:
    """Start with `RealNode(rundir).start()`; `stop()` leaves nothing on the host."""

    def __init__(self, rundir: Path, toolchain: Toolchain | None = None) -> None:
        self.toolchain = toolchain or Toolchain.load()
        self.toolchain.require(
            "kubelet", "kube-proxy", "containerd", "containerd-shim-runc-v2", "ctr", "runc"
        )
        self.rundir = rundir.resolve()
        self.dirs = node_dirs(self.rundir)
        self.plane: NodeControlPlane | None = None
        self._procs: dict[str, ManagedProcess] = {}

    @property
    def kubeconfig(self) -> Path:
        return self.rundir / "kubeconfig"

    @property
    def ingress_address(self) -> str:
        return f"{NODE_IP}:{INGRESS_PORT}"

    # -- start ---------------------------------------------------------------

    def start(self, images: Images = (), timeout: float = 180.0) -> Self:
        """Images are imported before the kubelet starts: a pod never tries to pull."""
        remaining = nodehost.remove_leftovers(self.dirs)
        if remaining:
            raise RuntimeError("cannot clean the last node's leftovers:\n" + "\n".join(remaining))
        self._fresh_dirs()
        ca = CertificateAuthority.create(self.dirs.pki)
        hostnet.setup()
        self.plane = NodeControlPlane(self.rundir, ca, self.toolchain)
        self.plane.start_control_plane(timeout)
        self._start_containerd()
        for archive in images:
            self.import_image(archive)
        self._write_node_files(ca)
        self._start_kubelet()
        self._start_kube_proxy()
        self._authorize_apiserver_to_kubelet()
        self.wait_node_ready(timeout)
        self.plane.wait_default_service_account(timeout)
        for namespace in RESTRICTED_NAMESPACES:
            self.kubectl(
                "label", "--overwrite", "namespace", namespace,
                "pod-security.kubernetes.io/enforce=restricted",
                "pod-security.kubernetes.io/warn=restricted",
            )  # fmt: skip
        self._apply_addons(timeout)
        self._publish_ingress()
        self._write_env()
        return self

    def _fresh_dirs(self) -> None:
        for sub in ("containerd", "kubelet", "pod-logs", "cni", "pki", "registry-hosts"):
            subprocess.run(["rm", "-rf", str(self.rundir / sub)], check=True)
        for folder in (self.dirs.cni_conf, self.dirs.cni_ipam, self.dirs.pod_logs, self.dirs.pki):
            folder.mkdir(parents=True, exist_ok=True)
        nodehost.record_root(self.dirs)
        # Our own cgroup parent, ready for the kubelet's QoS hierarchy under it.
        for hierarchy in nodehost.CGROUP_FS.iterdir():
            if hierarchy.name == "unified" or not hierarchy.is_dir():
                continue
            ours = hierarchy / CGROUP_ROOT.lstrip("/")
            ours.mkdir(exist_ok=True)
            if hierarchy.name == "cpuset":
                for knob in ("cpuset.cpus", "cpuset.mems"):
                    (ours / knob).write_text((hierarchy / knob).read_text())

    def _proc(
        self, name: str, argv: list[str | Path], env: dict[str, str] | None = None
    ) -> ManagedProcess:
        proc = ManagedProcess(name, argv, log_path=self.rundir / "logs" / f"{name}.log", env=env)
        self._procs[name] = proc
        return proc.start()

    def _path_env(self) -> dict[str, str]:
        # containerd finds its shim, the shim finds runc, through PATH.
        path = [str(self.toolchain.containerd.parent), str(self.toolchain.runc.parent)]
        return {**os.environ, "PATH": ":".join([*path, "/usr/sbin", "/usr/bin", "/sbin", "/bin"])}

    def _start_containerd(self) -> None:
        default_hosts = self.dirs.registry_hosts / "_default"
        default_hosts.mkdir(parents=True, exist_ok=True)
        (default_hosts / "hosts.toml").write_text(CLOSED_REGISTRY_HOSTS)
        config = self.rundir / "containerd.toml"
        config.write_text(
            containerd_config(self.dirs, self.toolchain.runc, self.toolchain.cni_bin_dir)
        )
        proc = self._proc(
            "containerd", [self.toolchain.containerd, "--config", config], env=self._path_env()
        )
        wait_for(
            lambda: self.ctr("version", check=False).returncode == 0,
            timeout=60,
            what="containerd",
            alive=proc.ensure_running,
        )

    def _write_node_files(self, ca: CertificateAuthority) -> None:
        assert self.plane is not None
        self.dirs.resolv_conf.write_text("")
        (self.dirs.cni_conf / "10-orderpipeline.conflist").write_text(
            json.dumps(cni_conflist(self.dirs), indent=2)
        )
        kubelet_client = ca.issue(
            "kubelet-client",
            f"system:node:{NODE_NAME}",
            organizations=("system:nodes",),
            client=True,
        )
        serving = ca.issue("kubelet-serving", NODE_NAME, ip_addresses=(NODE_IP,), server=True)
        proxy_client = ca.issue("kube-proxy", "system:kube-proxy", client=True)
        server = self.plane.server
        for name, pair, user in (
            ("kubelet.kubeconfig", kubelet_client, f"system:node:{NODE_NAME}"),
            ("kube-proxy.kubeconfig", proxy_client, "system:kube-proxy"),
        ):
            path = self.rundir / name
            path.write_text(
                yaml.safe_dump(cert_kubeconfig(server, ca.cert_path, pair.cert, pair.key, user))
            )
            path.chmod(0o600)
        (self.rundir / "kubelet.yaml").write_text(
            yaml.safe_dump(kubelet_config(self.dirs, ca.cert_path, (serving.cert, serving.key)))
        )
        (self.rundir / "kube-proxy.yaml").write_text(
            yaml.safe_dump(kube_proxy_config(self.rundir / "kube-proxy.kubeconfig"))
        )

    def _start_kubelet(self) -> None:
        self._proc(
            "kubelet",
            [
                self.toolchain.kubelet,
                f"--config={self.rundir / 'kubelet.yaml'}",
                f"--kubeconfig={self.rundir / 'kubelet.kubeconfig'}",
                f"--root-dir={self.dirs.kubelet_root}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={NODE_IP}",
                "--v=1",
            ],
            env=self._path_env(),
        )

    def _start_kube_proxy(self) -> None:
        self._proc(
            "kube-proxy",
            [self.toolchain.kube_proxy, f"--config={self.rundir / 'kube-proxy.yaml'}", "--v=1"],
            env=self._path_env(),
        )

    def _authorize_apiserver_to_kubelet(self) -> None:
        """kubeadm's binding: the API server may use the kubelet API (logs, exec)."""
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "kube-apiserver-kubelet-client"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:kubelet-api-admin",
            },
            "subjects": [
                {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "User",
                    "name": "kube-apiserver-kubelet-client",
                }
            ],
        }
        self.kubectl("apply", "-f", "-", input=json.dumps(binding))

    def wait_node_ready(self, timeout: float = 180.0) -> None:
        def ready() -> bool:
            out = self.kubectl(
                "get", "node", NODE_NAME, "-o",
                "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                check=False,
            )  # fmt: skip
            return out.stdout.strip() == "True"

        wait_for(
            ready,
            timeout=timeout,
            what=f"node {NODE_NAME} Ready",
            interval=0.5,
            alive=self.ensure_running,
        )

    def _apply_addons(self, timeout: float) -> None:
        """CoreDNS and Traefik (the default IngressClass), and wait for both."""
        for manifest in sorted(ADDONS.glob("*.yaml")):
            self.kubectl("apply", "-f", str(manifest))
        for manifest in sorted(ADDONS.glob("*.yaml")):
            for doc in yaml.safe_load_all(manifest.read_text()):
                if doc and doc.get("kind") == "Deployment":
                    ns = doc["metadata"].get("namespace", "default")
                    self.kubectl(
                        "rollout", "status", "-n", ns, f"deployment/{doc['metadata']['name']}",
                        f"--timeout={int(timeout)}s",
                        timeout=timeout + 10,
                    )  # fmt: skip

    def _publish_ingress(self) -> None:
        """Give the ingress controller's LoadBalancer Service the node address.

        What a cloud's load-balancer controller does: kube-proxy then answers on
        NODE_IP:80 for any host, and `kubectl get svc` shows the address.
        """
        status = {"status": {"loadBalancer": {"ingress": [{"ip": NODE_IP, "ipMode": "VIP"}]}}}
        self.kubectl(
            "patch", "service", "-n", INGRESS_NAMESPACE, INGRESS_SERVICE,
            "--subresource=status", "--type=merge", "-p", json.dumps(status),
        )  # fmt: skip

    def _write_env(self) -> None:
        # The pinned kubectl and helm, for a person's PATH (README).
        bin_dir = self.rundir / "bin"
        bin_dir.mkdir(exist_ok=True)
        for tool in (self.toolchain.kubectl, self.toolchain.helm):
            link = bin_dir / tool.name
            link.unlink(missing_ok=True)
            link.symlink_to(tool)
        (self.rundir / "env").write_text(
            f"KUBECONFIG={self.kubeconfig}\n"
            f"INGRESS_ADDRESS={self.ingress_address}\n"
            f"NODE_NAME={NODE_NAME}\n"
            f"NODE_IP={NODE_IP}\n"
            f"API_SERVER={self.plane.server if self.plane else ''}\n"
        )

    # -- images --------------------------------------------------------------

    def images(self) -> set[str]:
        return set(self.ctr("images", "ls", "-q").stdout.split())

    def import_image(self, archive: Path) -> list[str]:
        """Import (and unpack) an OCI archive into the kubelet's image store; its names.

        The names are the archive's own references (hack/images.sh writes full ones).
        """
        with tarfile.open(archive) as tar:
            index = tar.extractfile("index.json")
            manifests = json.load(index)["manifests"] if index else []
        names = [m["annotations"]["org.opencontainers.image.ref.name"] for m in manifests]
        self.ctr("images", "import", str(archive))
        missing = set(names) - self.images()
        if not names or missing:
            raise RuntimeError(f"importing {archive} gave no image named {missing or names}")
        return names

    # -- stop ----------------------------------------------------------------

    def ensure_running(self) -> None:
        for proc in self._procs.values():
            proc.ensure_running()

    def stop(self) -> list[str]:
        """Stop everything and return what is left on the host (nothing, normally)."""
        kubelet = self._procs.get("kubelet")
        if kubelet is not None:
            kubelet.stop(timeout=15)
        if "containerd" in self._procs and self._procs["containerd"].running:
            # Removing the sandboxes through the CRI lets CNI release addresses and veths.
            self.crictl("rmp", "--all", "--force", check=False, timeout=120)
        for name in ("kube-proxy", "containerd"):
            if name in self._procs:
                self._procs[name].stop(timeout=15)
        if self.plane is not None:
            self.plane.stop()
        return nodehost.remove_leftovers(self.dirs)

    # -- clients -------------------------------------------------------------

    def _tool(
        self, argv: list[str | Path], check: bool, timeout: float, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(a) for a in argv], capture_output=True, text=True, timeout=timeout, input=input,
            env={**os.environ, "KUBECONFIG": str(self.kubeconfig)},
        )  # fmt: skip
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, argv))}: {result.stderr.strip()[-2000:]}")
        return result

    def ctr(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        address = str(self.dirs.containerd_socket)
        return self._tool(
            [self.toolchain.ctr, "--address", address, "-n", "k8s.io", *args], check, timeout
        )

    def crictl(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        endpoint = f"unix://{self.dirs.containerd_socket}"
        return self._tool(
            [
                self.toolchain.crictl,
                "--runtime-endpoint",
                endpoint,
                "--image-endpoint",
                endpoint,
                *args,
            ],
            check,
            timeout,
        )

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return self._tool([self.toolchain.kubectl, *args], check, timeout, input=input)

    def helm(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return self._tool([self.toolchain.helm, *args], check, timeout)


# -- images for the node ------------------------------------------------------


def build_images() -> list[Path]:
    """`hack/images.sh` for the project's and the node's images: their OCI archives."""
    env = {**os.environ, "IMAGES_OCI": "1"}
    script = REPO_ROOT / "hack" / "images.sh"
    subprocess.run(["bash", str(script), "all"], check=True, env=env)
    built = subprocess.run(
        ["bash", str(script), "node"], check=True, env=env, stdout=subprocess.PIPE, text=True
    )
    # images.sh prints its work folder last.
    work = Path(built.stdout.strip().splitlines()[-1])
    return sorted((work / "oci").glob("*.tar"))


# -- `python -m devinfra.node up|down|status|leftovers` -------------------------


def _serve(rundir: Path) -> None:
    from devinfra import daemon

    node = RealNode(rundir)
    images = [Path(a) for a in json.loads((rundir / "images.json").read_text())]

    def start() -> None:
        node.start(images)
        print(f"node ready: KUBECONFIG={node.kubeconfig}", flush=True)

    def stop() -> None:
        left = node.stop()
        if left:
            print("left on the host:\n" + "\n".join(left), flush=True)

    daemon.serve(rundir, start, stop)


def main(argv: list[str]) -> int:
    from devinfra import daemon

    command = argv[0] if argv else "status"
    rundir = (Path(argv[1]) if len(argv) > 1 else RUNDIR).resolve()
    if command == "serve":
        _serve(rundir)
    elif command == "up":
        if os.geteuid() != 0:
            print(
                "make node-up needs root: it creates bridges, mounts, cgroups and nftables rules.",
                file=sys.stderr,
            )
            return 1
        if daemon.running(rundir):
            print(f"{WHAT} is already running ({rundir}).")
            return 0
        started = time.monotonic()
        rundir.mkdir(parents=True, exist_ok=True)
        images = build_images()
        (rundir / "images.json").write_text(json.dumps([str(a) for a in images]))
        daemon.up("devinfra.node", rundir, WHAT, timeout=600)
        print(f"{WHAT} is up in {time.monotonic() - started:.0f} s. Use it with:")
        print(f"  export KUBECONFIG={rundir / 'kubeconfig'}")
        print(f"  ingress: http://{NODE_IP}:{INGRESS_PORT}/ (any host; see {rundir / 'env'})")
    elif command == "down":
        daemon.down(rundir, WHAT, timeout=180)
        left = nodehost.remove_leftovers(node_dirs(rundir))
        if left:
            print("could not remove:\n" + "\n".join(left), file=sys.stderr)
            return 1
    elif command == "status":
        print(f"{WHAT}: {'running' if daemon.running(rundir) else 'stopped'}")
    elif command == "leftovers":
        left = nodehost.leftovers(node_dirs(rundir))
        print("\n".join(left) if left else "nothing left on the host")
        return 1 if left else 0
    else:
        print("usage: python -m devinfra.node up|down|status|leftovers", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
