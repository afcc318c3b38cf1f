"""Batch lanes kept in Firestore: one document per lane key, changed optimistically."""

from __future__ import annotations

from collections.abc import Callable

from google.cloud import firestore

from common.domain.lanes import Lane
from common.gcp import clients
from common.gcp.optimistic_write import Snapshot, write_optimistically


class FirestoreLaneStore:
    """Lanes in Firestore (collection ``Settings.collections.batch_lanes``), written like jobs:
    read, compute, write only if the document is still the version read."""

    def __init__(self, project: str, collection: str) -> None:
        self.project = project
        self.collection = collection

    @property
    def client(self) -> firestore.Client:
        return clients.firestore_client(self.project)  # one per process (common.gcp.clients)

    def get(self, key: str) -> Lane:
        snap = self.client.collection(self.collection).document(key).get()
        return Lane.model_validate(snap.to_dict()) if snap.exists else Lane(key=key)

    def update(self, key: str, change: Callable[[Lane], Lane | None]) -> Lane:
        def parse(snap: Snapshot) -> Lane:
            return Lane.model_validate(snap.to_dict()) if snap.exists else Lane(key=key)

        ref = self.client.collection(self.collection).document(key)
        before, new = write_optimistically(self.client, ref, parse, change, what=f"lane {key}")
        return before if new is None else new
