"""The daily spend ledger in Firestore, sharded so concurrent charges do not contend."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

from google.api_core import exceptions as gexc
from google.cloud import firestore

from common.notes.ledger import Charge, utc_day


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
