"""Fixed-window rate limits shared by every function instance, kept in Firestore.

One document per (key, window): ``{collection}/{sha256(key)[:32]}-{window}-{index}`` with
``count`` and ``expire_at`` (the TTL policy's field: Firestore deletes a window an hour after it
ends). A request counts against all its keys at once with atomic server-side increments; the
commit returns the value each increment produced, a ticket unique to this request. Any ticket
over its limit: the request takes its increments back and is refused. So exactly ``limit``
requests pass per window, never more, and refused requests are not counted (a client that
keeps retrying still gets its full rate).

Why not a read-then-write transaction: every request of one client (and, behind one address,
of many) writes the same documents, and transactions on a hot document queue on its lock: under
16 concurrent calls the Firestore emulator timed out most of them after ~50 s
(bench/load.py found it). Increments do not lock.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.cloud import firestore

from common.domain.errors import RateLimited
from common.gcp import clients
from common.gcp.firestore_calls import STORE_CALL, unavailable_as_domain_error

EXPIRE_AFTER = timedelta(hours=1)


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
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.project = project
        self.collection = collection
        self.limits = tuple(limits)
        self._clock = clock

    @property
    def client(self) -> firestore.Client:
        return clients.firestore_client(self.project)  # one per process (common.gcp.clients)

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
        count = self.client.batch()
        for (_, window, _), ref in zip(slots, refs, strict=True):
            start = (now // window.seconds) * window.seconds
            end = datetime.fromtimestamp(start + window.seconds, UTC)
            count.set(
                ref,
                {
                    "count": firestore.Increment(1),
                    "window": window.name,
                    "window_start": datetime.fromtimestamp(start, UTC),
                    "expire_at": end + EXPIRE_AFTER,
                },
                merge=True,
            )
        with unavailable_as_domain_error("count a request"):
            results = count.commit(**STORE_CALL)
        # One transform per write (the increment); its result is the count it produced.
        tickets = [int(result.transform_results[0].integer_value) for result in results]
        refused = next(
            (
                (key, w)
                for (key, w, _), ticket in zip(slots, tickets, strict=True)
                if ticket > w.limit
            ),
            None,
        )
        if refused is None:
            return
        undo = self.client.batch()
        for ref in refs:
            undo.update(ref, {"count": firestore.Increment(-1)})
        with unavailable_as_domain_error("undo a count"):
            undo.commit(**STORE_CALL)
        key, window = refused
        kind = key.split(":", 1)[0]
        window_end = (now // window.seconds + 1) * window.seconds
        retry_after = max(1, math.ceil(window_end - now))
        raise RateLimited(
            f"rate limit of {window.limit} requests per {window.name} per {kind} reached; "
            f"retry in {retry_after}s",
            retry_after_s=retry_after,
        )
