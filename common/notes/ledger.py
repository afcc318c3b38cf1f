"""The daily spend ledger: what every model call cost, summed per UTC day, with a budget.

Firestore layout (collection ``Settings.collections.spend``)::

    spend/{YYYY-MM-DD}                      the day
    spend/{YYYY-MM-DD}/shards/{0..n-1}      usd, prompt_tokens, completion_tokens, calls
    spend/{YYYY-MM-DD}/charges/{call_id}    one per call: job, provider, model, usage, usd

A charge and its shard increment commit in one batch whose ``create`` fails if the charge
exists, so a retried write never counts a call twice. Sharding keeps each counter document
under Firestore's ~1 sustained write/s per document at thousands of jobs an hour.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from common.domain.notes import Usage


@dataclass(frozen=True)
class Charge:
    call_id: str
    job_id: str
    provider: str
    model: str
    usage: Usage
    usd: float


class SpendLedger(Protocol):
    def spent_usd(self, day: str | None = None) -> float: ...
    def charge(self, charge: Charge) -> bool: ...


class MemorySpendLedger:
    """The ledger in one process's memory (a benchmark, a test), idempotent per call id like
    Firestore's (``common.gcp.ledger_store``); ``spent`` is what the day had spent before."""

    def __init__(self, spent: float = 0.0) -> None:
        self.charges: dict[str, Charge] = {}
        self.opening = spent
        self._lock = threading.Lock()

    def spent_usd(self, day: str | None = None) -> float:
        with self._lock:
            return self.opening + sum(c.usd for c in self.charges.values())

    def charge(self, charge: Charge) -> bool:
        with self._lock:
            if charge.call_id in self.charges:
                return False
            self.charges[charge.call_id] = charge
            return True


def utc_day(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%d")
