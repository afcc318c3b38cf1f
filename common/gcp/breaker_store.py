"""The circuit breaker's state in Firestore, shared by every instance."""

from __future__ import annotations

from collections.abc import Callable

from google.cloud import firestore

from common.gcp.optimistic_write import Snapshot, write_optimistically
from common.notes.breaker import BreakerState, T


class FirestoreBreakerStore:
    def __init__(self, client_factory: Callable[[], firestore.Client], collection: str) -> None:
        self._client_factory = client_factory
        self.collection = collection

    def _ref(self, name: str) -> firestore.DocumentReference:
        return self._client_factory().collection(self.collection).document(name)

    def read(self, name: str) -> BreakerState:
        return _parse(self._ref(name).get())

    def mutate(
        self, name: str, change: Callable[[BreakerState], tuple[T, BreakerState | None]]
    ) -> T:
        results: list[T] = []

        def apply(state: BreakerState) -> BreakerState | None:
            result, new = change(state)
            results.append(result)  # the run whose write (or no change) stands comes last
            return new

        client = self._client_factory()
        ref = client.collection(self.collection).document(name)
        write_optimistically(client, ref, _parse, apply, what=f"breaker {name}")
        return results[-1]


def _parse(snap: Snapshot) -> BreakerState:
    return BreakerState.model_validate(snap.to_dict()) if snap.exists else BreakerState()
