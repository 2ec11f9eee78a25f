"""Couchbase outages: how long the consumer waits before trying Couchbase again.

While it waits the consumer keeps polling Kafka (so its group membership stays alive) with
every partition paused; consumer.py does that. The schedule is tenacity's exponential wait
with jitter, the one core/couchbase.py uses to connect, reset by the first success.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tenacity import RetryCallState, Retrying, wait_exponential_jitter

BACKOFF_INITIAL_S = 0.25
BACKOFF_MAX_S = 15.0
# Replicas that lost Couchbase together should not all come back in the same instant.
BACKOFF_JITTER_S = 0.25

_wait = wait_exponential_jitter(
    multiplier=BACKOFF_INITIAL_S, max=BACKOFF_MAX_S, jitter=BACKOFF_JITTER_S
)


def delay_after(failures: int) -> float:
    """The wait after `failures` consecutive failures (1 or more): 0.25 s doubling to 15 s,
    each plus up to 0.25 s of jitter, never more than 15 s."""
    state = RetryCallState(Retrying(), None, (), {})
    state.attempt_number = failures
    return float(_wait(state))


class Outage:
    """Consecutive Couchbase failures and the time before which not to try again."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.failures = 0
        self.until = 0.0

    def fail(self) -> float:
        """One more failure: returns the wait before the next attempt."""
        self.failures += 1
        delay = delay_after(self.failures)
        self.until = self._clock() + delay
        return delay

    def succeed(self) -> None:
        self.failures = 0
        self.until = 0.0

    @property
    def waiting(self) -> bool:
        return self._clock() < self.until

    def remaining(self) -> float:
        return max(0.0, self.until - self._clock())
