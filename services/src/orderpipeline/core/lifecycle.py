"""Graceful shutdown: SIGTERM or SIGINT sets a stop flag that the worker loop checks.

The loop then finishes its in-flight work, commits and closes (leaving the consumer group at
once instead of after a session timeout). A second signal exits immediately.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType


class StopFlag:
    """Set by a signal or by `set()`; `wait(timeout)` sleeps until set."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_name: str | None = None

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)

    def install(self) -> StopFlag:
        """Handle SIGTERM and SIGINT in the main thread; returns self."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._event.is_set():
            # Second signal: the operator wants out now; skip the graceful drain.
            os._exit(128 + signum)
        self.signal_name = signal.Signals(signum).name
        self._event.set()
