"""`orderpipeline-operator`: run the operator with the settings from OPERATOR_* variables."""

from __future__ import annotations

import logging

import kopf

from orderpipeline_operator import main as _handlers  # noqa: F401  (registers the handlers)
from orderpipeline_operator.settings import get_settings


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
        liveness_endpoint=f"http://0.0.0.0:{conf.liveness_port}/healthz",
    )


if __name__ == "__main__":
    run()
