"""Batch lanes kept in Firestore: one document per lane key, changed in transactions."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from google.api_core import exceptions as gexc
from google.cloud import firestore

from common.domain.errors import StoreContention
from common.domain.lanes import WRITE_ATTEMPTS, Lane
from common.gcp import clients


class FirestoreLaneStore:
    """Lanes in Firestore (collection ``Settings.collections.batch_lanes``), written like jobs:
    read, compute, write only if the document is still the version read."""

    def __init__(
        self, project: str, collection: str, *, client: firestore.Client | None = None
    ) -> None:
        self.project = project
        self.collection = collection
        self._client = client

    @property
    def client(self) -> firestore.Client:
        if self._client is None:
            self._client = clients.firestore_client(self.project)
        return self._client

    def get(self, key: str) -> Lane:
        snap = self.client.collection(self.collection).document(key).get()
        return Lane.model_validate(snap.to_dict()) if snap.exists else Lane(key=key)

    def update(self, key: str, change: Callable[[Lane], Lane | None]) -> Lane:
        ref = self.client.collection(self.collection).document(key)
        for attempt in range(WRITE_ATTEMPTS):
            snap = ref.get()
            before = Lane.model_validate(snap.to_dict()) if snap.exists else Lane(key=key)
            new = change(before)
            if new is None:
                return before
            try:
                if snap.exists:
                    ref.update(
                        new.model_dump(mode="python"),
                        option=self.client.write_option(last_update_time=snap.update_time),
                    )
                else:
                    ref.create(new.model_dump(mode="python"))
            except (gexc.FailedPrecondition, gexc.Conflict, gexc.NotFound):
                time.sleep(random.uniform(0, min(0.2, 0.01 * 2**attempt)))
                continue
            return new
        raise StoreContention(f"lane {key}: still changing after {WRITE_ATTEMPTS} attempts")
