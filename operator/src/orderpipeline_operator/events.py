"""Kubernetes Events on a pipeline."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

import kopf


def post_event(
    body: Mapping[str, Any], kind: Literal["info", "warn"], *, reason: str, message: str
) -> None:
    """kopf posts it in the background; it never fails the caller.

    kopf.event, not kopf.info: kopf.info drops the Event when the posting level is above
    INFO, and the level is WARNING so that kopf's own log lines do not become Events."""
    try:
        kopf.event(
            kopf.Body(dict(body)),  # type: ignore[arg-type]
            type="Normal" if kind == "info" else "Warning",
            reason=reason,
            message=message[:1000],
        )
    except LookupError:  # outside a running operator (a script, a unit test): no poster
        logging.getLogger(__name__).info("event %s: %s", reason, message)
