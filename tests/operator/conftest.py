"""Fixtures for the operator's integration tests: the CRDs on the real local cluster and
the operator running as a subprocess against it (its real helm, the real charts/webapp)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from devinfra.cluster import LocalCluster
from operator_helpers import COUCHBASE_SECRET, OperatorProcess

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def operator_crds(k8s: LocalCluster) -> LocalCluster:
    k8s.install_crds(ROOT / "crds")
    peering = {
        "apiVersion": "kopf.dev/v1",
        "kind": "ClusterKopfPeering",
        "metadata": {"name": "orderpipeline-operator"},
    }
    k8s.kubectl("apply", "-f", "-", input=json.dumps(peering))
    return k8s


@pytest.fixture(scope="session")
def operator(
    operator_crds: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    proc = OperatorProcess(operator_crds, tmp_path_factory.mktemp("operator"))
    proc.start()
    yield proc
    proc.proc.stop()


@pytest.fixture
def namespace(operator_crds: LocalCluster) -> Iterator[str]:
    """A fresh namespace holding the Couchbase credentials Secret the samples reference."""
    name = f"op-{uuid.uuid4().hex[:8]}"
    operator_crds.kubectl("create", "namespace", name)
    operator_crds.kubectl(
        "-n", name, "create", "secret", "generic", COUCHBASE_SECRET,
        "--from-literal=username=Administrator", "--from-literal=password=password",
    )  # fmt: skip
    yield name
    operator_crds.kubectl("delete", "namespace", name, "--wait=false", check=False)
