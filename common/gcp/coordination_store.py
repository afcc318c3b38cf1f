"""Small coordination documents in Firestore (batch lanes, worker pools): one document per key,
changed optimistically like jobs (read, compute, write only if still the version read)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from google.cloud import firestore
from pydantic import BaseModel

from common.domain.lanes import Lane
from common.domain.scaling import WorkerPool
from common.gcp import clients
from common.gcp.optimistic_write import Snapshot, write_optimistically

D = TypeVar("D", bound=BaseModel)


class _DocumentStore(Generic[D]):
    model: type[D]

    def __init__(self, project: str, collection: str) -> None:
        self.project = project
        self.collection = collection

    @property
    def client(self) -> firestore.Client:
        return clients.firestore_client(self.project)  # one per process (common.gcp.clients)

    def _new(self, key: str) -> D:
        raise NotImplementedError

    def _parse(self, key: str, snap: Snapshot) -> D:
        return self.model.model_validate(snap.to_dict()) if snap.exists else self._new(key)

    def get(self, key: str) -> D:
        return self._parse(key, self.client.collection(self.collection).document(key).get())

    def update(self, key: str, change: Callable[[D], D | None]) -> D:
        ref = self.client.collection(self.collection).document(key)
        before, new = write_optimistically(
            self.client,
            ref,
            lambda snap: self._parse(key, snap),
            change,
            what=f"{self.collection}/{key}",
        )
        return before if new is None else new


class FirestoreLaneStore(_DocumentStore[Lane]):
    """Batch lanes (collection ``Settings.collections.batch_lanes``)."""

    model = Lane

    def _new(self, key: str) -> Lane:
        return Lane(key=key)


class FirestorePoolStore(_DocumentStore[WorkerPool]):
    """Worker pools, one per tier (collection ``Settings.collections.worker_pools``)."""

    model = WorkerPool

    def _new(self, key: str) -> WorkerPool:
        return WorkerPool(tier=key)
