"""A bounded queue in front of the one model: at most ``1 + depth`` requests inside.

One generates; up to ``depth`` wait in arrival order. The next one is told to come back (429)
with a Retry-After from the mean time a request has taken, times the requests ahead of it,
which the notes chain's retry rule honours. Waiting longer than a client would is pointless,
so a request that waits past ``max_wait_s`` is refused the same way.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class Busy(Exception):
    def __init__(self, retry_after_s: int, reason: str) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class Admission:
    def __init__(self, depth: int, *, max_wait_s: float = 600.0) -> None:
        self.depth = depth
        self.max_wait_s = max_wait_s
        self._cond = threading.Condition()
        self._inside = 0  # running + waiting
        self._tickets = 0  # served in ticket order: no overtaking
        self._serving = 0
        # Tickets of waiters that gave up: the order skips them instead of waiting on them.
        self._abandoned: set[int] = set()
        self._mean_s = 20.0  # a first guess, replaced by what requests take
        self.served = 0
        self.refused = 0

    def _retry_after(self, ahead: int) -> int:
        return max(1, math.ceil(self._mean_s * max(ahead, 1)))

    @contextmanager
    def slot(self) -> Iterator[float]:
        """Yields the seconds this request waited; raises ``Busy`` when the queue is full."""
        arrived = time.monotonic()
        with self._cond:
            if self._inside > self.depth:
                self.refused += 1
                raise Busy(self._retry_after(self._inside), "the model is busy and its queue full")
            self._inside += 1
            ticket = self._tickets
            self._tickets += 1
            deadline = arrived + self.max_wait_s
            while ticket != self._serving:
                left = deadline - time.monotonic()
                if left <= 0 or not self._cond.wait(timeout=left):
                    if ticket == self._serving:
                        break
                    self._leave_queue(ticket)
                    self.refused += 1
                    raise Busy(self._retry_after(self._inside), "waited too long for the model")
        started = time.monotonic()
        try:
            yield started - arrived
        finally:
            took = time.monotonic() - started
            with self._cond:
                self._mean_s = 0.8 * self._mean_s + 0.2 * took if self.served else took
                self.served += 1
                self._inside -= 1
                self._serving += 1
                self._skip_abandoned()
                self._cond.notify_all()

    def _leave_queue(self, ticket: int) -> None:
        self._inside -= 1
        self._abandoned.add(ticket)

    def _skip_abandoned(self) -> None:
        while self._serving in self._abandoned:
            self._abandoned.discard(self._serving)
            self._serving += 1

    def snapshot(self) -> dict[str, float | int]:
        with self._cond:
            return {
                "inside": self._inside,
                "depth": self.depth,
                "served": self.served,
                "refused": self.refused,
                "mean_request_s": round(self._mean_s, 2),
            }
