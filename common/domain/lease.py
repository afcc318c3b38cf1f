"""A lease: a claim on shared work that protects its holder for a while.

A holder that dies never releases its lease, so every lease lapses on its own: once ``ttl_s``
has passed since it was taken it is *stale* and anyone may take it over. Written once here,
for each claim in the system (a launch, a batch lane's pending launch, a notes batch, a
publish marker, a creator's publish, the breaker's probe).

Pure functions with the time passed in: the stores apply them in their conditional writes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field


class Lease(BaseModel):
    model_config = ConfigDict(frozen=True)

    holder: str
    taken_at: datetime
    ttl_s: float = Field(ge=0)

    @property
    def expires_at(self) -> datetime:
        return self.taken_at + timedelta(seconds=self.ttl_s)


def fresh(lease: Lease | None, now: datetime) -> bool:
    """Whether ``lease`` still protects its holder at ``now``."""
    return lease is not None and now < lease.expires_at


def holds(lease: Lease | None, holder: str) -> bool:
    """Whether ``holder`` is the one holding ``lease`` (fresh or not)."""
    return lease is not None and lease.holder == holder


def take(current: Lease | None, holder: str, now: datetime, ttl_s: float) -> Lease | None:
    """A lease for ``holder`` if ``current`` is free, stale or already its own (renewed);
    None while someone else holds it fresh."""
    if fresh(current, now) and not holds(current, holder):
        return None
    return Lease(holder=holder, taken_at=now, ttl_s=ttl_s)


def take_over(
    current: Lease | None, seen: Lease | None, holder: str, now: datetime, ttl_s: float
) -> Lease | None:
    """Take the lease we saw lapse (or saw free), unless it is fresh or changed since we saw
    it: of several takers that saw the same stale lease, the first conditional write wins."""
    if current != seen or fresh(current, now):
        return None
    return Lease(holder=holder, taken_at=now, ttl_s=ttl_s)


def release(current: Lease | None, holder: str) -> Lease | None:
    """The lease left after ``holder`` lets go: none if it was ``holder``'s, else unchanged."""
    return None if holds(current, holder) else current


def expire(current: Lease, holder: str) -> Lease:
    """``holder``'s lease, kept but lapsed now, so that the next taker need not wait out its
    time; another holder's lease is left as it is."""
    return current.model_copy(update={"ttl_s": 0.0}) if holds(current, holder) else current
