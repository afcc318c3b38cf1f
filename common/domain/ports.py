"""The ports: what the domain and the handlers need of storage, messaging and executions, as
Protocols.

Adapters in ``common/gcp`` implement them; ``tests/fakes.py`` fakes them in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Any, Protocol

from pydantic import BaseModel

from common.domain.blobs import BlobInfo
from common.domain.jobs import Job, JobError, JobState
from common.domain.lanes import Lane
from common.domain.messages import ChunkWork
from common.domain.scaling import WorkerPool


class BlobStore(Protocol):
    """Objects by ``gs://`` URI. Reads raise ``BlobNotFound``, any call ``BlobForbidden``;
    writes return the new generation."""

    def read_bytes(self, uri: str) -> bytes: ...
    def read_range(
        self, uri: str, start: int, length: int, *, generation: str | None = None
    ) -> bytes:
        """Up to ``length`` bytes from ``start``, as stored (of that generation, when given)."""
        ...

    def open_reader(self, uri: str, *, chunk_size: int) -> AbstractContextManager[IO[bytes]]:
        """A seekable reader that fetches ``chunk_size`` bytes at a time, for streaming."""
        ...

    def write_bytes(self, uri: str, data: bytes, *, content_type: str) -> str: ...
    def write_file(self, uri: str, path: Path, *, content_type: str) -> str: ...
    def create(self, uri: str, data: bytes, *, content_type: str) -> str:
        """Write only if absent; raises ``BlobExists`` when the object is there."""
        ...

    def replace(self, uri: str, data: bytes, *, content_type: str, generation: str) -> str:
        """Write only over ``generation``; raises ``BlobChanged`` when it is no longer that."""
        ...

    def download_to(self, uri: str, path: Path) -> BlobInfo: ...
    def stat(self, uri: str) -> BlobInfo | None: ...
    def list(self, prefix_uri: str) -> Iterator[str]: ...
    def delete(self, uri: str) -> bool: ...
    def delete_prefix(self, prefix_uri: str) -> int: ...
    def signed_url(
        self, uri: str, *, method: str, expires: timedelta, content_type: str | None = None
    ) -> str: ...


MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class Transition:
    job: Job
    changed: bool
    previous: JobState


@dataclass(frozen=True)
class Page:
    jobs: list[Job]
    next_page_token: str | None


class JobStore(Protocol):
    def create(self, job: Job) -> tuple[Job, bool]: ...
    def get(self, job_id: str) -> Job: ...
    def list(
        self,
        *,
        owner: str | None = None,
        state: JobState | None = None,
        limit: int = 20,
        page_token: str | None = None,
    ) -> Page: ...
    def transition(
        self,
        job_id: str,
        to: JobState,
        *,
        error: JobError | None = None,
        outputs: dict[str, str] | None = None,
        execution: str | None = None,
    ) -> Transition: ...
    def set_progress(self, job_id: str, progress: float) -> Job: ...
    def in_lane(self, lane: str, *, limit: int = 100) -> Sequence[Job]: ...
    def work_backlog(self, tier: str) -> int:
        """Chunks of the tier's jobs that are queued or being transcribed (an upper bound:
        a job's finished chunks count until the job is TRANSCRIBED)."""
        ...

    def update(self, job_id: str, change: Callable[[Job], Job | None]) -> Job: ...
    def delete(self, job_id: str) -> bool: ...


class Publisher(Protocol):
    def publish(self, topic: str, message: BaseModel | dict[str, Any], **attributes: str) -> str:
        """Publish JSON, wait for the message id; raises ``PublishFailed``."""
        ...


class Launcher(Protocol):
    """Transcribe executions; every method raises ``ExecutorUnavailable`` on service trouble."""

    def launch(self, job: str, *, env: dict[str, str], task_count: int, timeout_s: int) -> str:
        """Start an execution of Cloud Run job ``job`` (short name); returns its full name."""
        ...

    def is_alive(self, execution: str) -> bool:
        """Whether the execution exists and has not finished."""
        ...

    def cancel(self, execution: str) -> None:
        """Stop the execution's tasks; nothing to do if it finished or is gone."""
        ...

    def active_tasks(self, job: str, *, within_s: float) -> int:
        """Tasks of ``job``'s unfinished executions that have not ended (running or pending);
        executions created more than ``within_s`` ago are taken as finished."""
        ...


@dataclass(frozen=True)
class WorkItem:
    """A chunk pulled from a work queue, held until acked, deferred or nacked."""

    work: ChunkWork | None  # None: a body no worker can use (acked and logged)
    ack_id: str
    subscription: str
    delivery_attempt: int  # 1 on the first delivery
    message_id: str
    attributes: dict[str, str]


class WorkQueue(Protocol):
    """The chunk queues (Pub/Sub pull subscriptions)."""

    def pull(self, subscription: str) -> WorkItem | None:
        """One message, or None at once if there is none."""
        ...

    def extend(self, item: WorkItem, seconds: int) -> None:
        """Keep the message ours for ``seconds`` more (0 hands it back now)."""
        ...

    def ack(self, item: WorkItem) -> None: ...


class PoolStore(Protocol):
    def update(
        self, tier: str, change: Callable[[WorkerPool], WorkerPool | None]
    ) -> WorkerPool: ...


class LaneStore(Protocol):
    def get(self, key: str) -> Lane: ...
    def update(self, key: str, change: Callable[[Lane], Lane | None]) -> Lane: ...
