"""The real node for the tests in this folder: one per module, stopped at its end.

Building the images is part of the fixture (cached: a warm build takes seconds).
The node owns fixed host names (bridges, the node address), so only one can run:
a node started by `make node-up` must be stopped first, and the fixture says so.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from devinfra import daemon
from devinfra.node import RUNDIR, RealNode, build_images
from devinfra.toolchain import Toolchain

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

# What a person debugging a failed journey test asks first: which pods ran where, what the
# ingress routed to, what the cluster said. Collected only on failure, from the live node.
_DIAGNOSTICS: tuple[tuple[str, ...], ...] = (
    ("get", "pods", "-A", "-o", "wide"),
    ("get", "endpointslices", "-A"),
    ("get", "orderpipelines", "-o", "yaml"),
    ("get", "events", "-A", "--sort-by=.lastTimestamp"),
    ("logs", "-n", "traefik", "-l", "app.kubernetes.io/name=traefik", "--tail=200"),
    ("logs", "-l", "app.kubernetes.io/component=backend", "--tail=100", "--prefix"),
)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    node = item.funcargs.get("real_node") if isinstance(item, pytest.Function) else None
    if report.failed and isinstance(node, RealNode):
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"node-{item.name}.txt"
        with path.open("w") as out:
            for args in _DIAGNOSTICS:
                result = node.kubectl(*args, check=False, timeout=30)
                out.write(f"$ kubectl {' '.join(args)}\n{result.stdout}{result.stderr}\n")
        report.sections.append(("node diagnostics", f"written to {path}"))
    return report


@pytest.fixture(scope="session")
def node_images() -> list[Path]:
    return build_images()


@pytest.fixture(scope="module")
def real_node(
    tmp_path_factory: pytest.TempPathFactory,
    toolchain: Toolchain,
    node_images: list[Path],
) -> Iterator[RealNode]:
    if daemon.running(RUNDIR):
        pytest.fail(f"a node started by `make node-up` runs ({RUNDIR}): `make node-down` first")
    node = RealNode(tmp_path_factory.mktemp("node"), toolchain=toolchain)
    try:
        node.start(node_images)
        yield node
    finally:
        left = node.stop()
        assert not left, "the node left on the host:\n" + "\n".join(left)
