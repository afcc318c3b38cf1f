"""The ports: what the domain and the handlers need of storage, as Protocols.

Adapters in ``common/gcp`` implement them; ``tests/fakes.py`` fakes them in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from common.domain.blobs import BlobInfo
from common.domain.jobs import Job, JobError, JobState
from common.domain.lanes import Lane


class BlobStore(Protocol):
    def read_bytes(self, uri: str) -> bytes: ...
    def write_bytes(
        self, uri: str, data: bytes, *, content_type: str, if_generation_match: int | None = None
    ) -> str: ...
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
    def update(self, job_id: str, change: Callable[[Job], Job | None]) -> Job: ...
    def delete(self, job_id: str) -> bool: ...


class LaneStore(Protocol):
    def get(self, key: str) -> Lane: ...
    def update(self, key: str, change: Callable[[Lane], Lane | None]) -> Lane: ...
