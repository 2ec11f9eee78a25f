"""Fixtures for the operator's integration tests: the CRDs on the real local cluster and
the operator running as a subprocess against it (its real helm, the real charts/webapp)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from devinfra.cluster import LocalCluster

from .operator_helpers import OperatorProcess, create_namespace, install_operator_crds


@pytest.fixture(scope="session")
def operator_crds(k8s: LocalCluster) -> LocalCluster:
    install_operator_crds(k8s)
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
    create_namespace(operator_crds, name)
    yield name
    operator_crds.kubectl("delete", "namespace", name, "--wait=false", check=False)
