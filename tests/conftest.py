"""Fixtures that start the REAL infrastructure: a Kafka broker, gocaves, a
Kubernetes control plane. A missing component fails the test loudly with the
component's name and `make bootstrap`; nothing is mocked or skipped here.

The fixtures also classify the tests: a test that uses an infrastructure fixture
(directly or through another fixture) gets that fixture's marker, so it cannot
forget it; every test with no infrastructure marker at all is marked `unit`,
which is what `make test-unit` runs (`-m unit`). A test that starts
infrastructure without these fixtures carries the marker itself (pytestmark).
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

#: Fixture -> the marker of what it needs. Folder conftests' fixtures are listed too
#: (charts: helm_bin; node: node_images, real_node): the closure of a test's fixtures
#: names them all.
FIXTURE_MARKERS = {
    "kafka": "kafka",
    "kafka_sasl": "kafka",
    "gocaves": "couchbase",
    "couchbase": "couchbase",
    "k8s": "cluster",
    "browser": "browser",
    "helm_bin": "helm",
    "node_images": "node",
    "real_node": "node",
    "toolchain": "toolchain",
}

#: Markers of tests that need something `make test-unit` does not provide (it bootstraps
#: only the Python environment and the dashboard's npm packages).
INFRASTRUCTURE_MARKERS = frozenset(
    {"kafka", "couchbase", "cluster", "browser", "helm", "images", "node", "toolchain"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            if fixture in FIXTURE_MARKERS:
                item.add_marker(FIXTURE_MARKERS[fixture])
        needs = INFRASTRUCTURE_MARKERS & {m.name for m in item.iter_markers()}
        if needs and item.get_closest_marker("unit") is not None:
            raise pytest.UsageError(
                f"{item.nodeid} is marked unit by hand but needs {', '.join(sorted(needs))}:"
                " tests/conftest.py sets `unit`, drop the marker"
            )
        if not needs:
            item.add_marker("unit")


@pytest.fixture(autouse=True)
def _unit_tests_see_no_toolchain(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A `unit` test runs against an empty toolchain cache, in `make test` too.

    So a test that starts Kafka, gocaves, helm or the control plane without the fixtures
    above (and without its marker) fails in every run, naming the component and this
    folder, instead of passing wherever the cache happens to be warm and failing only in
    `make test-unit` on a fresh machine.
    """
    if request.node.get_closest_marker("unit") is not None:
        empty = tmp_path_factory.getbasetemp() / "unit-tests-get-no-toolchain-mark-the-test"
        empty.mkdir(exist_ok=True)
        monkeypatch.setenv("ORDERPIPELINE_CACHE", str(empty))


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
