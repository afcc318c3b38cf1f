"""In-memory stand-ins for the job store and the blob store, for the dispatch and transcribe
unit tests (the integration tests use the real emulators)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

from google.api_core import exceptions as gexc

from common.config.settings import Settings
from common.domain.blobs import BlobInfo, BlobRef
from common.domain.errors import BlobNotFound, JobNotFound
from common.domain.jobs import Job, JobError, JobSource, JobState, advance
from common.domain.lanes import LANE_STATES, Lane
from common.domain.ports import Page, Transition
from common.gcp.pubsub import Publisher
from run_jobs.transcribe.audio_cache import AudioCache
from run_jobs.transcribe.task import Worker


def settings(**transcription: object) -> Settings:
    return Settings(
        project="audionotes-test",
        buckets={"inbox": "test-inbox", "results": "test-results"},
        transcription=transcription,
    )


def new_job(
    job_id: str = "j-1", uri: str = "gs://test-inbox/uploads/a.wav", **options: object
) -> Job:
    return Job.new(
        job_id=job_id,
        owner="tester",
        source=JobSource(uri=uri, generation="1"),
        options=options or None,  # type: ignore[arg-type]
        retention_days=1,
    )


class MemoryJobStore:
    def __init__(self, *jobs: Job) -> None:
        self.jobs = {j.job_id: j for j in jobs}
        self.writes = 0

    def create(self, job: Job) -> tuple[Job, bool]:
        if job.job_id in self.jobs:
            return self.jobs[job.job_id], False
        self.jobs[job.job_id] = job
        return job, True

    def get(self, job_id: str) -> Job:
        if job_id not in self.jobs:
            raise JobNotFound(job_id)
        return self.jobs[job_id]

    def list(self, **_: object) -> Page:
        return Page(jobs=list(self.jobs.values()), next_page_token=None)

    def transition(
        self,
        job_id: str,
        to: JobState,
        *,
        error: JobError | None = None,
        outputs: dict[str, str] | None = None,
        execution: str | None = None,
    ) -> Transition:
        job = self.get(job_id)
        new, changed = advance(job, to, error=error, outputs=outputs, execution=execution)
        self.jobs[job_id] = new
        return Transition(job=new, changed=changed, previous=job.state)

    def set_progress(self, job_id: str, progress: float) -> Job:
        job = self.get(job_id)
        if progress > job.progress and not job.state.is_final:
            job = job.model_copy(update={"progress": min(progress, 1.0)})
            self.jobs[job_id] = job
        return job

    def update(self, job_id: str, change: Callable[[Job], Job | None]) -> Job:
        new = change(self.get(job_id))
        if new is not None:
            self.jobs[job_id] = new
            self.writes += 1
        return self.jobs[job_id]

    def in_lane(self, lane: str, *, limit: int = 100) -> list[Job]:
        found = [j for j in self.jobs.values() if j.batch_lane == lane and j.state in LANE_STATES]
        return sorted(found, key=lambda j: j.created_at)[:limit]


class MemoryLaneStore:
    def __init__(self) -> None:
        self.lanes: dict[str, Lane] = {}

    def get(self, key: str) -> Lane:
        return self.lanes.get(key, Lane(key=key))

    def update(self, key: str, change: Callable[[Lane], Lane | None]) -> Lane:
        new = change(self.get(key))
        if new is not None:
            self.lanes[key] = new
        return self.get(key)

    def delete(self, job_id: str) -> bool:
        return self.jobs.pop(job_id, None) is not None


class MemoryBlobStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.generations: dict[str, int] = {}

    def read_bytes(self, uri: str) -> bytes:
        if uri not in self.objects:
            raise BlobNotFound(uri)
        return self.objects[uri]

    def write_bytes(
        self, uri: str, data: bytes, *, content_type: str, if_generation_match: int | None = None
    ) -> str:
        current = self.generations.get(uri, 0)
        if if_generation_match is not None and if_generation_match != current:
            raise gexc.PreconditionFailed(uri)
        self.objects[uri] = data
        self.generations[uri] = current + 1
        return str(current + 1)

    def download_to(self, uri: str, path: Path) -> BlobInfo:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.read_bytes(uri))
        info = self.stat(uri)
        assert info is not None
        return info

    def stat(self, uri: str) -> BlobInfo | None:
        if uri not in self.objects:
            return None
        return BlobInfo(
            ref=BlobRef.parse(uri),
            size=len(self.objects[uri]),
            content_type=None,
            generation=str(self.generations[uri]),
            md5_hash=None,
        )

    def list(self, prefix_uri: str) -> Iterator[str]:
        yield from sorted(u for u in self.objects if u.startswith(prefix_uri))

    def delete(self, uri: str) -> bool:
        return self.objects.pop(uri, None) is not None

    def delete_prefix(self, prefix_uri: str) -> int:
        return sum(self.delete(u) for u in list(self.list(prefix_uri)))

    def signed_url(self, uri: str, **_: object) -> str:
        raise NotImplementedError


class NullPublisher:
    def publish(self, topic: str, message: object, **attributes: str) -> str:
        return "1"


@contextlib.contextmanager
def memory_worker(
    settings: Settings, audio: Path, job_id: str = "j-1"
) -> Iterator[tuple[Worker, MemoryBlobStore, Job]]:
    """A transcribe Worker on in-memory stores, with ``audio`` as a DISPATCHED job's upload
    (the benchmarks run the real task path on it)."""
    job = new_job(job_id=job_id, uri=f"gs://bench-inbox/uploads/{audio.name}")
    jobs, blobs = MemoryJobStore(job), MemoryBlobStore()
    jobs.transition(job.job_id, JobState.DISPATCHED)
    blobs.write_bytes(job.source.uri, audio.read_bytes(), content_type="audio/wav")
    with tempfile.TemporaryDirectory() as cache:
        yield (
            Worker(
                settings=settings,
                jobs=jobs,
                blobs=blobs,
                publisher=cast(Publisher, NullPublisher()),
                audio=AudioCache(Path(cache), settings, blobs),
            ),
            blobs,
            job,
        )
