"""`orderpipeline-operator`: run the operator with the settings from OPERATOR_* variables."""

from __future__ import annotations

import logging
import os
import socket

import kopf

from orderpipeline_operator import main as _handlers  # noqa: F401  (registers the handlers)
from orderpipeline_operator.settings import get_settings


def peering_identity() -> str:
    """Who this operator instance is among its peers: pod name (hostname) and pid.

    kopf's default asks the passwd database for the user name, and an image run as an
    arbitrary uid - as Kubernetes runs ours, uid 10001 with no passwd entry - has none:
    the operator crashed at start on the first real kubelet it met.
    """
    return f"{socket.gethostname()}/{os.getpid()}"


def run() -> None:
    conf = get_settings()
    kopf.configure(
        log_format=kopf.LogFormat.JSON if conf.log_format == "json" else kopf.LogFormat.FULL,
        verbose=conf.log_level == "DEBUG",
    )
    # kopf.configure knows only INFO, DEBUG (verbose) and WARNING (quiet).
    logging.getLogger().setLevel(conf.log_level)
    kopf.run(
        clusterwide=not conf.namespaces,
        namespaces=conf.namespaces,
        standalone=conf.standalone,
        peering_name=conf.peering_name,
        # kopf.run types it as peering.Identity, a NewType of str that kopf does not export.
        identity=peering_identity(),  # type: ignore[arg-type]
        liveness_endpoint=f"http://0.0.0.0:{conf.liveness_port}/healthz",
    )


if __name__ == "__main__":
    run()
