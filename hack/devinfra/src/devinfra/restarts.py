"""Restart a service that exits unexpectedly, with back-off, as a kubelet would.

`make up`'s supervisor runs the pipeline's services as plain processes; without
this, one crash (an OOM kill, a fatal Kafka error by design: the services exit and
expect a restart) stopped that part of the pipeline until `make down` / `make up`.
The delays follow the kubelet's CrashLoopBackOff: 1 s doubling to 30 s (the
kubelet's cap is 5 min; a laptop stack wants it back sooner), reset after a minute
of running.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from devinfra.procs import ManagedProcess

FIRST_DELAY_S = 1.0
MAX_DELAY_S = 30.0
HEALTHY_AFTER_S = 60.0

log = logging.getLogger("devinfra.restarts")


def backoff(recent_restarts: int) -> float:
    """Seconds to wait before the next start after `recent_restarts` quick exits."""
    return float(min(MAX_DELAY_S, FIRST_DELAY_S * 2**recent_restarts))


@dataclass
class Record:
    restarts: int = 0
    recent: int = 0  # restarts since the last minute of uninterrupted running
    started_at: float = field(default_factory=time.monotonic)
    last_exit: int | None = None


class Restarter:
    """Watches `services` in a thread; `changed` is called after each restart."""

    def __init__(
        self,
        services: Mapping[str, ManagedProcess],
        changed: Callable[[], None],
        interval: float = 0.5,
    ) -> None:
        self.services = services
        self.changed = changed
        self.interval = interval
        self.records = {name: Record() for name in services}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="restarter", daemon=True)

    def start(self) -> Restarter:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Before stopping the services: an exit from here on is wanted."""
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for name, proc in self.services.items():
                if not proc.running and not self._stop.is_set():
                    self._restart(name, proc)

    def _restart(self, name: str, proc: ManagedProcess) -> None:
        record = self.records[name]
        if time.monotonic() - record.started_at > HEALTHY_AFTER_S:
            record.recent = 0
        record.last_exit = proc.returncode
        delay = backoff(record.recent)
        log.warning(
            "%s exited with code %s; restart %d in %.0f s (log: %s)",
            name, proc.returncode, record.restarts + 1, delay, proc.log_path,
        )  # fmt: skip
        if self._stop.wait(delay):
            return
        # Said in the service's own log too, where `make logs` shows it.
        with proc.log_path.open("a") as out:
            out.write(
                f"[supervisor] {name} exited with code {record.last_exit}; "
                f"restart {record.restarts + 1} after {delay:.0f} s\n"
            )
        proc.start()
        record.restarts += 1
        record.recent += 1
        record.started_at = time.monotonic()
        self.changed()
