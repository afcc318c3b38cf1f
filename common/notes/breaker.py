"""A circuit breaker (closed / open / half-open) whose state every instance shares.

The state is one Firestore document per provider (collection ``Settings.collections.breakers``).
The transitions are pure functions of (state, now); the store applies them in conditional
writes, so two instances never both take the single half-open probe. A closed breaker
with no failures is read, not written, on the hot path.

- closed: calls go through; ``failure_threshold`` consecutive failures open it;
- open: calls are refused until ``open_s`` has passed;
- half-open: one caller (the probe) is let through and holds a lease for ``probe_lease_s``
  (so a probe that died frees it); its success closes the breaker, its failure reopens it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol, TypeVar

from pydantic import BaseModel

from common.domain.lease import Lease, take

T = TypeVar("T")


class BreakerPosition(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerState(BaseModel):
    state: BreakerPosition = BreakerPosition.CLOSED
    failures: int = 0
    opened_at: datetime | None = None
    probe: Lease | None = None  # the half-open probe's
    updated_at: datetime | None = None


@dataclass(frozen=True)
class BreakerConfig:
    failure_threshold: int = 5
    open_s: float = 60.0
    probe_lease_s: float = 180.0


def on_request(
    s: BreakerState, now: datetime, cfg: BreakerConfig, caller: str
) -> tuple[bool, BreakerState | None]:
    """``(allowed, new state or None for unchanged)``; ``caller`` names the request, which
    holds the probe's lease if it is let through to probe."""
    if s.state is BreakerPosition.CLOSED:
        return True, None
    if s.state is BreakerPosition.OPEN:
        assert s.opened_at is not None
        if now < s.opened_at + timedelta(seconds=cfg.open_s):
            return False, None
    probe = take(s.probe, caller, now, cfg.probe_lease_s)
    if probe is None:  # half-open, another caller's probe out
        return False, None
    half_open = s.model_copy(
        update={"state": BreakerPosition.HALF_OPEN, "probe": probe, "updated_at": now}
    )
    return True, half_open


def on_success(s: BreakerState, now: datetime) -> BreakerState | None:
    if s.state is BreakerPosition.CLOSED and s.failures == 0:
        return None
    return BreakerState(state=BreakerPosition.CLOSED, updated_at=now)


def on_failure(s: BreakerState, now: datetime, cfg: BreakerConfig) -> BreakerState | None:
    if s.state is BreakerPosition.OPEN:
        return None  # a straggler from before it opened
    failures = s.failures + 1
    if s.state is BreakerPosition.HALF_OPEN or failures >= cfg.failure_threshold:
        return BreakerState(
            state=BreakerPosition.OPEN, failures=failures, opened_at=now, updated_at=now
        )
    return s.model_copy(update={"failures": failures, "updated_at": now})


class BreakerStore(Protocol):
    def read(self, name: str) -> BreakerState: ...
    def mutate(
        self, name: str, change: Callable[[BreakerState], tuple[T, BreakerState | None]]
    ) -> T: ...


class MemoryBreakerStore:
    """The breaker's state in one process's memory (a benchmark, a test); deployments share
    it through Firestore (``common.gcp.breaker_store``)."""

    def __init__(self) -> None:
        self.states: dict[str, BreakerState] = {}
        self._lock = threading.Lock()

    def read(self, name: str) -> BreakerState:
        return self.states.get(name, BreakerState())

    def mutate(
        self, name: str, change: Callable[[BreakerState], tuple[T, BreakerState | None]]
    ) -> T:
        with self._lock:
            result, new = change(self.states.get(name, BreakerState()))
            if new is not None:
                self.states[name] = new
            return result


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        store: BreakerStore,
        config: BreakerConfig,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.name = name
        self.store = store
        self.config = config
        self.clock = clock

    def allow(self) -> bool:
        current = self.store.read(self.name)
        if current.state is BreakerPosition.CLOSED:
            return True
        caller = uuid.uuid4().hex
        return self.store.mutate(
            self.name, lambda s: on_request(s, self.clock(), self.config, caller)
        )

    def record_success(self) -> None:
        current = self.store.read(self.name)
        if current.state is BreakerPosition.CLOSED and current.failures == 0:
            return
        self.store.mutate(self.name, lambda s: (None, on_success(s, self.clock())))

    def record_failure(self) -> None:
        self.store.mutate(self.name, lambda s: (None, on_failure(s, self.clock(), self.config)))

    def state(self) -> BreakerState:
        return self.store.read(self.name)
