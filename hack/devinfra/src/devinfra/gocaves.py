"""gocaves, Couchbase's own protocol-level mock cluster, in control-port mode.

We listen on a control port; gocaves connects to it and, on request, creates a
fresh mock cluster (memcached binary KV + cluster-config HTTP), so every test
module can have a clean one from the same process. gocaves logs every packet:
its output goes to a file.
"""

from __future__ import annotations

import base64
import json
import socket
import urllib.request
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote, urlencode

from devinfra.procs import ManagedProcess, StartStop, wait_for
from devinfra.toolchain import Toolchain

DEFAULT_USERNAME = "Administrator"
DEFAULT_PASSWORD = "password"  # gocaves' fixed mock credentials, not a secret


@dataclass(frozen=True)
class CouchbaseCluster:
    connstr: str
    username: str
    password: str
    bucket: str
    mgmt_addrs: list[str]

    def service_env(self) -> dict[str, str]:
        """The services' environment variables (docs/contracts.md) for this cluster."""
        return {
            "COUCHBASE_CONNECTION_STRING": self.connstr,
            "COUCHBASE_BUCKET": self.bucket,
            "COUCHBASE_USERNAME": self.username,
            "COUCHBASE_PASSWORD": self.password,
        }

    def with_user(self, username: str, password: str) -> CouchbaseCluster:
        """This cluster as `username`, created (or its password replaced) with the admin role
        through the management REST API, as Couchbase Server's own would."""
        if not self.mgmt_addrs:
            raise RuntimeError(f"gocaves gave no management address for {self.connstr}")
        admin = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        request = urllib.request.Request(
            f"{self.mgmt_addrs[0]}/settings/rbac/users/local/{quote(username, safe='')}",
            data=urlencode({"password": password, "roles": "admin"}).encode(),
            method="PUT",
            headers={
                "Authorization": f"Basic {admin}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        urllib.request.urlopen(request, timeout=10).close()
        return replace(self, username=username, password=password)

    def connect(self) -> Any:
        """A ready couchbase SDK Cluster (caller closes it)."""
        from couchbase.auth import PasswordAuthenticator
        from couchbase.cluster import Cluster
        from couchbase.diagnostics import ServiceType
        from couchbase.options import ClusterOptions, WaitUntilReadyOptions

        cluster = Cluster(
            self.connstr, ClusterOptions(PasswordAuthenticator(self.username, self.password))
        )
        cluster.bucket(self.bucket)
        cluster.wait_until_ready(
            timedelta(seconds=20), WaitUntilReadyOptions(service_types=[ServiceType.KeyValue])
        )
        return cluster


class Gocaves(StartStop):
    """One gocaves process; `create_cluster()` gives a fresh mock cluster."""

    def __init__(self, workdir: Path, toolchain: Toolchain | None = None) -> None:
        self.toolchain = toolchain or Toolchain.load()
        self.toolchain.require("gocaves")
        self.workdir = workdir
        self._listener: socket.socket | None = None
        self._conn: socket.socket | None = None
        self._buffer = b""
        self.process: ManagedProcess | None = None
        self._clusters = 0

    def start(self, timeout: float = 30.0) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(timeout)
        self._listener = listener
        port = listener.getsockname()[1]
        self.process = ManagedProcess(
            "gocaves",
            [self.toolchain.gocaves, f"--control-port={port}"],
            log_path=self.workdir / "gocaves.log",
            cwd=self.workdir,
        ).start()
        try:
            self._conn, _ = listener.accept()
        except TimeoutError as exc:
            self.process.ensure_running()
            raise TimeoutError(
                f"gocaves did not connect to its control port within {timeout} s"
            ) from exc
        self._conn.settimeout(timeout)
        hello = self._receive()
        if hello.get("type") != "hello":
            raise RuntimeError(f"gocaves sent {hello!r} instead of hello")
        return self

    def _send(self, packet: dict[str, Any]) -> None:
        assert self._conn is not None, "gocaves is not started"
        self._conn.sendall(json.dumps(packet).encode() + b"\0")

    def _receive(self) -> dict[str, Any]:
        assert self._conn is not None, "gocaves is not started"
        while b"\0" not in self._buffer:
            chunk = self._conn.recv(65536)
            if not chunk:
                raise ConnectionError("gocaves closed its control connection")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        packet: dict[str, Any] = json.loads(raw)
        return packet

    def create_cluster(self, bucket: str = "default") -> CouchbaseCluster:
        """A fresh cluster; `bucket` other than "default" is added to it."""
        self._clusters += 1
        cluster_id = f"cluster-{self._clusters}"
        self._send({"type": "createcluster", "id": cluster_id})
        reply = self._receive()
        if not reply.get("connstr"):
            raise RuntimeError(f"gocaves could not create a cluster: {reply!r}")
        if bucket != "default":
            self._send(
                {
                    "type": "addbucket",
                    "cluster": cluster_id,
                    "name": bucket,
                    "replicas": 0,
                    "bucket_type": "couchbase",
                }
            )
            self._receive()
        cluster = CouchbaseCluster(
            connstr=reply["connstr"],
            username=DEFAULT_USERNAME,
            password=DEFAULT_PASSWORD,
            bucket=bucket,
            mgmt_addrs=list(reply.get("mgmt_addrs") or []),
        )
        wait_for(
            lambda: cluster.connect().close() is None,
            timeout=30,
            what=f"gocaves cluster {cluster.connstr}",
            interval=0.5,
        )
        return cluster

    def pause(self) -> None:
        """SIGSTOP: the cluster stops answering, as if the network dropped."""
        if self.process:
            self.process.pause()

    def resume(self) -> None:
        if self.process:
            self.process.resume()

    def stop(self) -> None:
        for sock in (self._conn, self._listener):
            if sock is not None:
                sock.close()
        self._conn = self._listener = None
        if self.process:
            self.process.stop(timeout=5)
