"""The real node for the tests in this folder: one per module, stopped at its end.

Building the images is part of the fixture (cached: a warm build takes seconds).
The node owns fixed host names (bridges, the node address), so only one can run:
a node started by `make node-up` must be stopped first, and the fixture says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from devinfra import daemon
from devinfra.node import RUNDIR, RealNode, build_images
from devinfra.toolchain import Toolchain


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
