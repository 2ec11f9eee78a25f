"""A real Kubernetes control plane on loopback, without a kubelet.

etcd, kube-apiserver, kube-controller-manager (Deployments make Pods, garbage
collection works) and kube-scheduler, built from source by `make bootstrap`,
plus kwok, which plays the kubelet of one fake node: pods scheduled there
become Running and Ready without running a container.

`python -m devinfra.cluster up|down|status` runs it for a person in the
background, with its kubeconfig at .run/cluster/kubeconfig.
"""

from __future__ import annotations

import json
import os
import secrets
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any, Self

import yaml

from devinfra.procs import ManagedProcess, StartStop, free_port, wait_for
from devinfra.tls import make_server_tls, make_signing_key
from devinfra.toolchain import Toolchain

NODE_NAME = "kwok-node-0"
SERVICE_CIDR = "10.96.0.0/16"


class CommandFailed(subprocess.CalledProcessError):
    """A failed kubectl/helm call whose message carries what the tool said."""

    def __init__(self, result: subprocess.CompletedProcess[str]) -> None:
        super().__init__(result.returncode, result.args, result.stdout, result.stderr)

    def __str__(self) -> str:
        said = (self.stderr or self.stdout or "").strip()[-2000:]
        return f"{super().__str__()}\n{said}"


def fake_node(name: str = NODE_NAME) -> dict[str, Any]:
    """A Node that kwok manages: generous capacity, no taints."""
    capacity = {"cpu": "32", "memory": "256Gi", "pods": "250", "ephemeral-storage": "1Ti"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "spec": {},
        "status": {"allocatable": capacity, "capacity": capacity},
    }


def kubeconfig(server: str, ca_file: Path, token: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "local", "cluster": {"server": server, "certificate-authority": str(ca_file)}}
        ],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin"}}],
        "current-context": "local",
    }


class LocalCluster(StartStop):
    """Start with `with LocalCluster(workdir) as k8s:` or start()/stop()."""

    def __init__(self, workdir: Path, toolchain: Toolchain | None = None) -> None:
        self.toolchain = toolchain or Toolchain.load()
        self.toolchain.require(
            "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "kubectl"
        )
        self.workdir = workdir.resolve()
        self.kubeconfig = self.workdir / "kubeconfig"
        self.etcd_port = free_port()
        self.etcd_peer_port = free_port()
        self.apiserver_port = free_port()
        self._token = secrets.token_urlsafe(24)
        self._procs: dict[str, ManagedProcess] = {}
        self._prepared = False

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def env(self) -> dict[str, str]:
        """The environment for kubectl, helm and kopf: this process's plus KUBECONFIG."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    # -- preparation ---------------------------------------------------------

    def _prepare(self) -> None:
        pki = self.workdir / "pki"
        self.tls = make_server_tls(
            pki,
            extra_dns=("kubernetes", "kubernetes.default", "kubernetes.default.svc"),
            extra_ips=("10.96.0.1",),
        )
        self.sa_key, self.sa_pub = make_signing_key(pki)
        self._write_admin_access()
        self._prepared = True

    def _write_admin_access(self) -> None:
        """The admin's bearer token for the API server, and the kubeconfig that uses it."""
        tokens = self.workdir / "tokens.csv"
        tokens.write_text(f"{self._token},admin,admin,system:masters\n")
        tokens.chmod(0o600)
        self.kubeconfig.write_text(
            yaml.safe_dump(kubeconfig(self.server, self.tls.ca_pem, self._token))
        )
        self.kubeconfig.chmod(0o600)

    def _proc(self, name: str, argv: list[str | Path]) -> ManagedProcess:
        proc = ManagedProcess(name, argv, log_path=self.workdir / "logs" / f"{name}.log")
        self._procs[name] = proc
        return proc

    def _etcd(self) -> ManagedProcess:
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        return self._proc(
            "etcd",
            [
                self.toolchain.etcd,
                "--name=local",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{self.etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{self.etcd_port}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=local={peer}",
                # A throwaway test cluster: durability of each write is not worth an fsync.
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )

    def _apiserver(self) -> ManagedProcess:
        return self._proc(
            "kube-apiserver", [self.toolchain.kube_apiserver, *self._apiserver_args()]
        )

    def _apiserver_args(self) -> list[str | Path]:
        return [
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.apiserver_port}",
            f"--tls-cert-file={self.tls.cert_pem}",
            f"--tls-private-key-file={self.tls.key_pem}",
            f"--client-ca-file={self.tls.ca_pem}",
            f"--token-auth-file={self.workdir / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={self.sa_pub}",
            f"--service-account-signing-key-file={self.sa_key}",
            "--endpoint-reconciler-type=none",
            "--v=1",
        ]

    def _controller_manager(self) -> ManagedProcess:
        return self._proc(
            "kube-controller-manager",
            [self.toolchain.kube_controller_manager, *self._controller_manager_args()],
        )

    def _controller_manager_args(self) -> list[str | Path]:
        return [
            f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
            "--bind-address=127.0.0.1",
            # No HTTPS endpoint: nothing here reads it, and a port picked free and
            # then bound later could be taken in between (seen once in CI).
            "--secure-port=0",
            f"--service-account-private-key-file={self.sa_key}",
            f"--root-ca-file={self.tls.ca_pem}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--leader-elect=false",
            "--node-monitor-grace-period=60s",
            # The default 20 requests/s makes creating ReplicaSets and Pods for
            # many pipelines at once the slowest step of every multi-pipeline test.
            "--kube-api-qps=200",
            "--kube-api-burst=400",
            "--v=1",
        ]

    def _scheduler(self) -> ManagedProcess:
        return self._proc(
            "kube-scheduler",
            [
                self.toolchain.kube_scheduler,
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                "--bind-address=127.0.0.1",
                # No HTTPS endpoint: nothing here reads it, and a port picked free and
                # then bound later could be taken in between (seen once in CI).
                "--secure-port=0",
                "--leader-elect=false",
                "--v=1",
            ],
        )

    def _kwok(self) -> ManagedProcess:
        return self._proc(
            "kwok",
            [
                self.toolchain.kwok,
                f"--kubeconfig={self.kubeconfig}",
                f"--config={self.toolchain.kwok_stages}",
                "--manage-all-nodes=true",
                "--cidr=10.244.0.0/16",
                "--node-ip=127.0.0.1",
                f"--server-address=127.0.0.1:{free_port()}",
            ],
        )

    # -- lifecycle -----------------------------------------------------------

    def _get(self, path: str) -> tuple[int, str]:
        ctx = ssl.create_default_context(cafile=str(self.tls.ca_pem))
        req = urllib.request.Request(
            self.server + path, headers={"Authorization": f"Bearer {self._token}"}
        )
        with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
            return resp.status, resp.read().decode()

    def _apiserver_ready(self) -> bool:
        return self._get("/readyz")[0] == 200

    def _etcd_ready(self) -> bool:
        url = f"http://127.0.0.1:{self.etcd_port}/health"
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(json.loads(resp.read()).get("health") == "true")

    def start(self, timeout: float = 120.0) -> Self:
        self.start_control_plane(timeout)
        self._kwok().start()
        self.kubectl("apply", "-f", "-", input=json.dumps(fake_node()))
        self.wait_node_ready(timeout)
        self.wait_default_service_account(timeout)
        return self

    def start_control_plane(self, timeout: float = 120.0) -> None:
        """etcd, kube-apiserver, kube-controller-manager and kube-scheduler."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self._prepared:
            self._prepare()
        etcd = self._etcd().start()
        wait_for(self._etcd_ready, timeout=30, what="etcd", alive=etcd.ensure_running)
        self.start_apiserver(timeout)
        for proc in (self._controller_manager(), self._scheduler()):
            proc.start()

    def wait_default_service_account(self, timeout: float = 120.0) -> None:
        wait_for(
            self._default_service_account,
            timeout=timeout,
            what="the default ServiceAccount (controller-manager)",
            alive=self._procs["kube-controller-manager"].ensure_running,
        )

    def start_apiserver(self, timeout: float = 120.0) -> None:
        apiserver = self._apiserver().start()
        wait_for(
            self._apiserver_ready,
            timeout=timeout,
            what=f"kube-apiserver {self.server}/readyz",
            interval=0.5,
            alive=apiserver.ensure_running,
        )

    def restart_apiserver(self) -> None:
        """Stop and start kube-apiserver on the same port: clients see it come back."""
        self._procs["kube-apiserver"].stop()
        self.start_apiserver()

    def wait_node_ready(self, timeout: float = 120.0) -> None:
        def ready() -> bool:
            out = self.kubectl(
                "get",
                "node",
                NODE_NAME,
                "-o",
                "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                check=False,
            )
            return out.stdout.strip() == "True"

        wait_for(
            ready,
            timeout=timeout,
            what=f"node {NODE_NAME} Ready",
            interval=0.5,
            alive=self._procs["kwok"].ensure_running,
        )

    def install_crds(self, folder: Path, timeout: float = 90.0) -> None:
        """Apply every CRD in `folder` and wait until the API server serves them all.

        Polls the Established condition itself: `kubectl wait` straight after an
        apply can fail on a CRD that discovery does not list yet. A client-side
        apply, as a person would: a server-side one would own the fields and make
        a later `helm upgrade` of the operator chart (server-side in Helm 4) conflict.
        """
        names = self.kubectl("apply", "-f", str(folder), "-o", "name").stdout.split()

        def established() -> bool:
            jsonpath = "{.status.conditions[?(@.type=='Established')].status}"
            return all(
                self.kubectl("get", name, "-o", f"jsonpath={jsonpath}", check=False).stdout
                == "True"
                for name in names
            )

        wait_for(established, timeout=timeout, what=f"CRDs of {folder} established")

    def _default_service_account(self) -> bool:
        return self.kubectl("get", "serviceaccount", "default", check=False).returncode == 0

    def stop(self) -> None:
        for name in ("kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"):
            if name in self._procs:
                self._procs[name].stop(timeout=10)

    def processes(self) -> dict[str, ManagedProcess]:
        return dict(self._procs)

    # -- clients -------------------------------------------------------------

    def _run(
        self, argv: list[str | Path], input: str | None, check: bool, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(a) for a in argv],
            input=input,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise CommandFailed(result)
        return result

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return self._run([self.toolchain.kubectl, *args], input, check, timeout)

    def helm(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return self._run([self.toolchain.helm, *args], input, check, timeout)


# -- `python -m devinfra.cluster up|down|status` --------------------------------

RUNDIR = Path(".run") / "cluster"
PEERING = {
    "apiVersion": "kopf.dev/v1",
    "kind": "ClusterKopfPeering",
    "metadata": {"name": "orderpipeline-operator"},
}


def _serve(rundir: Path) -> None:
    from devinfra import daemon
    from devinfra.toolchain import REPO_ROOT

    cluster = LocalCluster(rundir)
    operator: ManagedProcess | None = None

    def start() -> None:
        nonlocal operator
        cluster.start()
        # The project's CRDs and its operator, so a person can `kubectl apply`
        # a sample from the README right away.
        cluster.install_crds(REPO_ROOT / "crds")
        # kopf's peering object: one active operator replica at a time.
        cluster.kubectl("apply", "-f", "-", input=json.dumps(PEERING))
        operator_bin = Path(sys.executable).parent / "orderpipeline-operator"
        operator = ManagedProcess(
            "operator",
            [operator_bin],
            log_path=rundir / "logs" / "operator.log",
            env={**cluster.env, "OPERATOR_HELM_BINARY": str(cluster.toolchain.helm)},
            cwd=REPO_ROOT,
        ).start()
        print(f"cluster ready: KUBECONFIG={cluster.kubeconfig}", flush=True)

    def stop() -> None:
        if operator is not None:
            operator.stop()
        cluster.stop()

    daemon.serve(rundir, start, stop)


def main(argv: list[str]) -> int:
    from devinfra import daemon

    command = argv[0] if argv else "status"
    rundir = Path(argv[1]) if len(argv) > 1 else RUNDIR
    what = "local Kubernetes cluster"
    if command == "serve":
        _serve(rundir.resolve())
    elif command == "up":
        daemon.up("devinfra.cluster", rundir, what)
        print(
            f"{what} is up. Use it with:\n  export KUBECONFIG={(rundir / 'kubeconfig').resolve()}"
        )
        print(f"Operator log: {rundir / 'logs' / 'operator.log'}")
    elif command == "down":
        daemon.down(rundir, what)
    elif command == "status":
        print(f"{what}: {'running' if daemon.running(rundir) else 'stopped'}")
    else:
        print("usage: python -m devinfra.cluster up|down|status", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
