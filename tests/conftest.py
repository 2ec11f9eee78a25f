"""Fixtures that start the REAL infrastructure: a Kafka broker, gocaves, a
Kubernetes control plane. A missing component fails the test loudly with the
component's name and `make bootstrap`; nothing is mocked or skipped here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from devinfra.chromium import CHROMIUM_ARGS
from devinfra.cluster import LocalCluster
from devinfra.gocaves import CouchbaseCluster, Gocaves
from devinfra.kafka import KafkaBroker
from devinfra.toolchain import Toolchain
from playwright.sync_api import Browser, sync_playwright

ANALYTICS_BUCKET = "order_analytics"


@pytest.fixture(scope="session")
def toolchain() -> Toolchain:
    return Toolchain.load()


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory, toolchain: Toolchain) -> Iterator[KafkaBroker]:
    """A PLAINTEXT single-node KRaft broker on loopback, shared by the session."""
    with KafkaBroker(tmp_path_factory.mktemp("kafka"), toolchain=toolchain) as broker:
        yield broker


@pytest.fixture(scope="session")
def kafka_sasl(
    tmp_path_factory: pytest.TempPathFactory, toolchain: Toolchain
) -> Iterator[KafkaBroker]:
    """A SASL_SSL (PLAIN) broker with a certificate generated at start."""
    with KafkaBroker(
        tmp_path_factory.mktemp("kafka-sasl"), sasl=True, toolchain=toolchain
    ) as broker:
        yield broker


@pytest.fixture(scope="session")
def gocaves(tmp_path_factory: pytest.TempPathFactory, toolchain: Toolchain) -> Iterator[Gocaves]:
    with Gocaves(tmp_path_factory.mktemp("gocaves"), toolchain=toolchain) as server:
        yield server


@pytest.fixture
def couchbase(gocaves: Gocaves) -> CouchbaseCluster:
    """A fresh mock cluster with the `order_analytics` bucket, per test."""
    return gocaves.create_cluster(bucket=ANALYTICS_BUCKET)


@pytest.fixture(scope="session")
def k8s(tmp_path_factory: pytest.TempPathFactory, toolchain: Toolchain) -> Iterator[LocalCluster]:
    """kube-apiserver + etcd + controller-manager + scheduler + one kwok node."""
    with LocalCluster(tmp_path_factory.mktemp("cluster"), toolchain=toolchain) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def browser(toolchain: Toolchain) -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright, one per session.

    One Playwright instance for the whole session: its sync API cannot be
    started while another instance runs in the same thread.
    """
    toolchain.require("chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(toolchain.chromium), args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()
