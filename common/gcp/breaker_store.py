"""The circuit breaker's state in Firestore, shared by every instance."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.cloud import firestore

from common.notes.breaker import BreakerState, T


class FirestoreBreakerStore:
    def __init__(self, client_factory: Callable[[], firestore.Client], collection: str) -> None:
        self._client_factory = client_factory
        self.collection = collection

    def _ref(self, name: str) -> firestore.DocumentReference:
        return self._client_factory().collection(self.collection).document(name)

    def read(self, name: str) -> BreakerState:
        snap = self._ref(name).get()
        return BreakerState.model_validate(snap.to_dict()) if snap.exists else BreakerState()

    def mutate(
        self, name: str, change: Callable[[BreakerState], tuple[T, BreakerState | None]]
    ) -> T:
        ref = self._ref(name)

        @firestore.transactional
        def run(transaction: firestore.Transaction) -> Any:
            snap = ref.get(transaction=transaction)
            state = BreakerState.model_validate(snap.to_dict()) if snap.exists else BreakerState()
            result, new = change(state)
            if new is not None:
                transaction.set(ref, new.model_dump(mode="python"))
            return result

        value: T = run(self._client_factory().transaction())
        return value
