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

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from google.api_core import exceptions as gexc
from google.cloud import firestore

from common.notes import Usage


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


def utc_day(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%d")


class FirestoreSpendLedger:
    def __init__(
        self,
        client_factory: Callable[[], firestore.Client],
        collection: str,
        *,
        shards: int = 8,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client_factory = client_factory
        self.collection = collection
        self.shards = shards
        self.clock = clock

    def _day(self, day: str) -> firestore.DocumentReference:
        return self._client_factory().collection(self.collection).document(day)

    def spent_usd(self, day: str | None = None) -> float:
        shards = self._day(day or utc_day(self.clock())).collection("shards").stream()
        return float(sum((s.to_dict() or {}).get("usd", 0.0) for s in shards))

    def charge(self, charge: Charge) -> bool:
        """Record one call; False if this call_id was already recorded."""
        now = self.clock()
        day = self._day(utc_day(now))
        shard = int(hashlib.sha256(charge.call_id.encode()).hexdigest(), 16) % self.shards
        batch = self._client_factory().batch()
        batch.create(
            day.collection("charges").document(charge.call_id),
            {
                "job_id": charge.job_id,
                "provider": charge.provider,
                "model": charge.model,
                "prompt_tokens": charge.usage.prompt_tokens,
                "completion_tokens": charge.usage.completion_tokens,
                "usd": charge.usd,
                "at": now,
            },
        )
        batch.set(
            day.collection("shards").document(str(shard)),
            {
                "usd": firestore.Increment(charge.usd),
                "prompt_tokens": firestore.Increment(charge.usage.prompt_tokens),
                "completion_tokens": firestore.Increment(charge.usage.completion_tokens),
                "calls": firestore.Increment(1),
            },
            merge=True,
        )
        try:
            batch.commit()
        except gexc.Conflict:  # AlreadyExists: this call was recorded by an earlier try
            return False
        return True


class MemorySpendLedger:
    """For unit tests."""

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
