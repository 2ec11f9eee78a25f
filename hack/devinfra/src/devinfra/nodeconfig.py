"""The real node's configuration files, built by pure functions.

One node, one address, everything inside 198.18.0.0/15 (a range reserved for
benchmarking networks, never routed on the internet): pods in 198.18.0.0/24 on
the bridge `opl-pods0`, Services in 198.19.0.0/24, and the node itself at
198.19.255.1 on an otherwise empty bridge `opl-node0` (this kernel has no dummy
interfaces, and the kubelet refuses a loopback node IP). The API server, the
kubelet and the ingress listen there, so the host reaches all of them without
any route leaving the machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

NODE_NAME = "orderpipeline-node"
NODE_IP = "198.19.255.1"
NODE_BRIDGE = "opl-node0"
POD_BRIDGE = "opl-pods0"
POD_CIDR = "198.18.0.0/24"
POD_GATEWAY = "198.18.0.1"
SERVICE_CIDR = "198.19.0.0/24"
#: Everything the node uses, routed to our bridges only.
NODE_RANGE = "198.18.0.0/15"
KUBERNETES_SERVICE_IP = "198.19.0.1"
DNS_SERVICE_IP = "198.19.0.10"
CLUSTER_DOMAIN = "cluster.local"
APISERVER_PORT = 6443
INGRESS_PORT = 80
PAUSE_IMAGE = "localhost/node/pause:3.10"
#: Our own cgroup parent in every v1 hierarchy, so `down` knows exactly what is ours.
CGROUP_ROOT = "/orderpipeline-node"


@dataclass(frozen=True)
class NodeDirs:
    """Where the node keeps its state.

    `state` holds sockets: a unix socket path is limited to 108 bytes, so it
    lives under /run with a short name rather than inside a clone's deep path.
    """

    root: Path
    state: Path

    @property
    def containerd_root(self) -> Path:
        return self.root / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return self.state / "containerd.sock"

    @property
    def kubelet_root(self) -> Path:
        return self.root / "kubelet"

    @property
    def pod_logs(self) -> Path:
        return self.root / "pod-logs"

    @property
    def cni_conf(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def cni_ipam(self) -> Path:
        return self.root / "cni" / "ipam"

    @property
    def resolv_conf(self) -> Path:
        return self.root / "resolv.conf"

    @property
    def registry_hosts(self) -> Path:
        return self.root / "registry-hosts"

    @property
    def pki(self) -> Path:
        return self.root / "pki"


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "'" + str(value).replace("'", "") + "'"


def containerd_config(dirs: NodeDirs, runc: Path, cni_bin: Path) -> str:
    """containerd 2.x (config version 3): our own root, state and socket; CRI only."""
    sections: dict[str, dict[str, object]] = {
        "grpc": {"address": str(dirs.containerd_socket)},
        "ttrpc": {"address": str(dirs.state / "containerd.sock.ttrpc")},
        "debug": {"level": "info"},
        # Images are imported, never pulled: the sandbox image is ours too.
        "plugins.'io.containerd.cri.v1.images'.pinned_images": {"sandbox": PAUSE_IMAGE},
        "plugins.'io.containerd.cri.v1.images'": {"snapshotter": "overlayfs"},
        # Every registry resolves to a closed loopback port: a missing image fails
        # at once instead of sending a lookup or a request off the machine.
        "plugins.'io.containerd.cri.v1.images'.registry": {"config_path": str(dirs.registry_hosts)},
        # Root here lacks CAP_SYS_RESOURCE: a negative oom_score_adj (the kubelet
        # asks -998 for sandboxes) fails every sandbox unless containerd clamps it.
        "plugins.'io.containerd.cri.v1.runtime'": {
            "restrict_oom_score_adj": True,
            "enable_selinux": False,
        },
        "plugins.'io.containerd.cri.v1.runtime'.containerd": {"default_runtime_name": "runc"},
        "plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc": {
            "runtime_type": "io.containerd.runc.v2",
        },
        "plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options": {
            "BinaryName": str(runc),
            "SystemdCgroup": False,
        },
        "plugins.'io.containerd.cri.v1.runtime'.cni": {
            "bin_dirs": [str(cni_bin)],
            "conf_dir": str(dirs.cni_conf),
            "max_conf_num": 1,
        },
    }
    lines = [
        "version = 3",
        f"root = {toml_value(str(dirs.containerd_root))}",
        f"state = {toml_value(str(dirs.state / 'containerd'))}",
        "",
    ]
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"  {k} = {toml_value(v)}" for k, v in values.items()]
        lines.append("")
    return "\n".join(lines)


def cni_conflist(dirs: NodeDirs) -> dict[str, Any]:
    """One bridge, host-local addresses, no masquerading and no port mapping.

    Without portmap and firewall the CNI writes no iptables rules at all: nothing
    to clean up, and no NAT that could make pod traffic look like the host's.
    """
    return {
        "cniVersion": "1.0.0",
        "name": "orderpipeline-node",
        "plugins": [
            {
                "type": "bridge",
                "bridge": POD_BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR, "gateway": POD_GATEWAY}]],
                    # Pods need a default route to reach Service IPs (kube-proxy
                    # translates them on the node); the FORWARD guard stops
                    # anything that would leave the machine.
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(dirs.cni_ipam),
                },
            }
        ],
    }


def kubelet_config(dirs: NodeDirs, client_ca: Path, serving: tuple[Path, Path]) -> dict[str, Any]:
    """A kubeadm-style kubelet: webhook authn/authz, no anonymous access, no read-only port."""
    cert, key = serving
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # This machine's cgroups are v1; kubelet 1.36 refuses them unless told.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": CGROUP_ROOT,
        "containerRuntimeEndpoint": f"unix://{dirs.containerd_socket}",
        "address": NODE_IP,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "tlsCertFile": str(cert),
        "tlsPrivateKeyFile": str(key),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True, "cacheTTL": "2m"},
            "x509": {"clientCAFile": str(client_ca)},
        },
        "authorization": {"mode": "Webhook"},
        "clusterDomain": CLUSTER_DOMAIN,
        "clusterDNS": [DNS_SERVICE_IP],
        # An empty file: pods never inherit the machine's own resolver.
        "resolvConf": str(dirs.resolv_conf),
        "podLogsDir": str(dirs.pod_logs),
        "failSwapOn": False,
        # Images are imported, not pulled: garbage collection must never drop them.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "200Mi",
            "nodefs.available": "2%",
            "imagefs.available": "2%",
        },
        "serializeImagePulls": False,
        "maxPods": 60,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "protectKernelDefaults": False,
        "makeIPTablesUtilChains": False,
        "localStorageCapacityIsolation": True,
        "staticPodPath": "",
    }


def kube_proxy_config(kubeconfig: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "nftables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": NODE_NAME,
        "bindAddress": NODE_IP,
        "clusterCIDR": POD_CIDR,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        "nodePortAddresses": [f"{NODE_IP}/32"],
        # Setting nf_conntrack_max needs privileges this machine's root lacks.
        "conntrack": {"maxPerCore": 0, "min": 0},
    }


def cert_kubeconfig(server: str, ca: Path, cert: Path, key: Path, user: str) -> dict[str, Any]:
    """A kubeconfig that authenticates with a client certificate."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "node", "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [
            {
                "name": user,
                "user": {"client-certificate": str(cert), "client-key": str(key)},
            }
        ],
        "contexts": [{"name": "node", "context": {"cluster": "node", "user": user}}],
        "current-context": "node",
    }


#: containerd's hosts.toml for every registry (`_default`): a closed port on loopback.
CLOSED_REGISTRY_HOSTS = """server = "http://127.0.0.1:9"

[host."http://127.0.0.1:9"]
  capabilities = ["pull", "resolve"]
"""
