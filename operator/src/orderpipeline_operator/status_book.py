"""The status the operator last wrote for each pipeline, and which pipelines are Ready.

The source of truth for "did anything change" (a status is written only when it did):
the body a handler receives may predate the operator's own last write.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping
from typing import Any

from orderpipeline_operator.metrics import PIPELINES_READY


class StatusBook:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._written: dict[str, dict[str, Any]] = {}
        self._ready: set[str] = set()

    def last(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The status last written, else the one the object carries (an operator restart)."""
        with self._guard:
            written = self._written.get(body["metadata"]["uid"])
        return written or dict(body.get("status") or {})

    def remember(self, body: Mapping[str, Any], status: Mapping[str, Any], ready: bool) -> None:
        """`status` was just written (or found already in place)."""
        uid = body["metadata"]["uid"]
        with self._guard:
            self._written[uid] = copy.deepcopy(dict(status))
            if ready:
                self._ready.add(uid)
            else:
                self._ready.discard(uid)
            PIPELINES_READY.set(len(self._ready))

    @property
    def ready_count(self) -> int:
        with self._guard:
            return len(self._ready)

    def forget(self, uid: str) -> None:
        with self._guard:
            self._written.pop(uid, None)
            self._ready.discard(uid)
            PIPELINES_READY.set(len(self._ready))
