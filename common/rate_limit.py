"""Fixed-window rate limits shared by every function instance, kept in Firestore.

One document per (key, window): ``{collection}/{sha256(key)[:32]}-{window}-{index}`` with
``count`` and ``expire_at`` (the TTL policy's field: Firestore deletes a window an hour after it
ends). A request passes only if every one of its keys is under every limit, and then counts
against all of them, in one transaction: two instances can never both take the last slot.
Refused requests are not counted, so a client that keeps retrying still gets its full rate.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.cloud import firestore

from common.errors import AudionotesError

EXPIRE_AFTER = timedelta(hours=1)
# Firestore retries a contended transaction; a burst from one client contends on purpose.
_TRANSACTION_ATTEMPTS = 25


class RateLimited(AudionotesError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Window:
    name: str
    seconds: int
    limit: int


def windows(per_minute: int, per_hour: int) -> tuple[Window, ...]:
    return (Window("minute", 60, per_minute), Window("hour", 3600, per_hour))


class RateLimiter:
    def __init__(
        self,
        project: str,
        collection: str,
        limits: Sequence[Window],
        *,
        client: firestore.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.project = project
        self.collection = collection
        self.limits = tuple(limits)
        self._client = client
        self._clock = clock

    @property
    def client(self) -> firestore.Client:
        if self._client is None:
            self._client = firestore.Client(project=self.project)
        return self._client

    def doc_id(self, key: str, window: Window, now: float) -> str:
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        return f"{digest}-{window.name}-{int(now // window.seconds)}"

    def hit(self, keys: Sequence[str]) -> None:
        """Count one request against each key, or raise ``RateLimited`` (counting nothing)."""
        now = self._clock()
        slots = [
            (key, w, self.doc_id(key, w, now)) for key in dict.fromkeys(keys) for w in self.limits
        ]
        refs = [self.client.collection(self.collection).document(doc) for _, _, doc in slots]

        @firestore.transactional
        def run(transaction: firestore.Transaction) -> tuple[str, Window] | None:
            counts = {
                snap.id: int((snap.to_dict() or {}).get("count", 0))
                for snap in self.client.get_all(refs, transaction=transaction)
            }
            for key, window, doc in slots:
                if counts.get(doc, 0) >= window.limit:
                    return key, window
            for (_, window, doc), ref in zip(slots, refs, strict=True):
                start = (now // window.seconds) * window.seconds
                end = datetime.fromtimestamp(start + window.seconds, UTC)
                transaction.set(
                    ref,
                    {
                        "count": counts.get(doc, 0) + 1,
                        "window": window.name,
                        "window_start": datetime.fromtimestamp(start, UTC),
                        "expire_at": end + EXPIRE_AFTER,
                    },
                )
            return None

        refused = run(self.client.transaction(max_attempts=_TRANSACTION_ATTEMPTS))
        if refused is not None:
            key, window = refused
            kind = key.split(":", 1)[0]
            window_end = (now // window.seconds + 1) * window.seconds
            retry_after = max(1, math.ceil(window_end - now))
            raise RateLimited(
                f"rate limit of {window.limit} requests per {window.name} per {kind} reached; "
                f"retry in {retry_after}s",
                retry_after_s=retry_after,
            )
