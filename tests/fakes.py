"""The unit tier's stand-ins, one of each: in-memory job, lane, pool and blob stores and work
queues, a recording publisher, a fake Cloud Run launcher and audio prober, a clock, and
builders of settings, jobs, plans, segments and transcribe workers; in-memory breaker state
and spend ledger. The integration tier uses the real emulators."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from common.audio.decode import AudioInfo
from common.config.settings import Settings
from common.domain.blobs import BlobInfo, BlobRef
from common.domain.errors import (
    BlobChanged,
    BlobExists,
    BlobForbidden,
    BlobNotFound,
    ExecutorUnavailable,
    InvalidInput,
    JobNotFound,
)
from common.domain.jobs import Job, JobError, JobSource, JobState, advance
from common.domain.lanes import LANE_STATES, Lane
from common.domain.messages import ChunkWork
from common.domain.ports import Page, Transition, WorkItem
from common.domain.scaling import WorkerPool
from common.domain.transcription_plan import ChunkPlan
from common.domain.transcripts import Segment, Word

# The in-memory breaker store and spend ledger live in common.notes (the benchmarks use them).
from run_jobs.transcribe.audio_cache import AudioCache
from run_jobs.transcribe.task import TranscribeServices


def settings(**groups: dict[str, object]) -> Settings:
    """Test settings; ``groups`` override Settings' groups, e.g. ``batch_lanes={"count": 1}``."""
    return Settings(
        project="audionotes-test",
        buckets={"inbox": "test-inbox", "results": "test-results"},
        **groups,  # type: ignore[arg-type]
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
        found = [
            j
            for j in self.jobs.values()
            if j.coordination.batch_lane == lane and j.state in LANE_STATES
        ]
        return sorted(found, key=lambda j: j.created_at)[:limit]

    def work_backlog(self, tier: str) -> int:
        return sum(
            j.coordination.work_chunks
            for j in self.jobs.values()
            if j.coordination.work_tier == tier
            and j.state in (JobState.DISPATCHED, JobState.TRANSCRIBING)
        )

    def delete(self, job_id: str) -> bool:
        return self.jobs.pop(job_id, None) is not None


class MemoryPoolStore:
    def __init__(self) -> None:
        self.pools: dict[str, WorkerPool] = {}

    def update(self, tier: str, change: Callable[[WorkerPool], WorkerPool | None]) -> WorkerPool:
        new = change(self.pools.get(tier, WorkerPool(tier=tier)))
        if new is not None:
            self.pools[tier] = new
        return self.pools.get(tier, WorkerPool(tier=tier))


class MemoryWorkQueue:
    """Pull subscriptions in memory. ``extend`` hands the message back as its next delivery:
    at once, or, given a ``clock``, once that many seconds have passed (in the unit tier no
    keep-alive runs: its first renewal is ack_deadline/3 away)."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self.clock = clock
        self.queues: dict[str, list[WorkItem]] = {}
        self.acked: list[WorkItem] = []
        self.extended: list[tuple[str, int]] = []  # (message id, seconds)
        self._hidden: list[tuple[float, WorkItem]] = []
        self._ids = 0

    def put(self, subscription: str, work: ChunkWork | None, *, attempt: int = 1) -> WorkItem:
        self._ids += 1
        item = WorkItem(
            work=work,
            ack_id=f"ack-{self._ids}",
            subscription=subscription,
            delivery_attempt=attempt,
            message_id=f"m-{self._ids}",
            attributes={},
        )
        self.queues.setdefault(subscription, []).append(item)
        return item

    def pull(self, subscription: str) -> WorkItem | None:
        now = self.clock() if self.clock else 0.0
        for due in [h for h in self._hidden if h[0] <= now]:
            self._hidden.remove(due)
            self.queues.setdefault(due[1].subscription, []).append(due[1])
        queue = self.queues.get(subscription) or []
        return queue.pop(0) if queue else None

    def extend(self, item: WorkItem, seconds: int) -> None:
        self.extended.append((item.message_id, seconds))
        again = replace(item, delivery_attempt=item.delivery_attempt + 1)
        if self.clock is None:
            self.queues.setdefault(item.subscription, []).append(again)
        else:
            self._hidden.append((self.clock() + seconds, again))

    def ack(self, item: WorkItem) -> None:
        self.acked.append(item)


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


class MemoryBlobStore:
    """Objects in a dict; a URI in ``forbidden`` answers every call as Cloud Storage does to
    an identity without access to it."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.generations: dict[str, int] = {}
        self.forbidden: set[str] = set()

    def read_bytes(self, uri: str) -> bytes:
        self._check(uri)
        if uri not in self.objects:
            raise BlobNotFound(uri)
        return self.objects[uri]

    def read_range(
        self, uri: str, start: int, length: int, *, generation: str | None = None
    ) -> bytes:
        data = self.read_bytes(uri)
        if generation is not None and generation != str(self.generations[uri]):
            raise BlobNotFound(f"{uri} generation {generation}")
        return data[start : start + length]

    @contextlib.contextmanager
    def open_reader(self, uri: str, *, chunk_size: int) -> Iterator[IO[bytes]]:
        with io.BytesIO(self.read_bytes(uri)) as reader:
            yield reader

    def write_bytes(self, uri: str, data: bytes, *, content_type: str) -> str:
        self._check(uri)
        generation = self.generations.get(uri, 0) + 1
        self.objects[uri] = data
        self.generations[uri] = generation
        return str(generation)

    def write_file(self, uri: str, path: Path, *, content_type: str) -> str:
        return self.write_bytes(uri, path.read_bytes(), content_type=content_type)

    def create(self, uri: str, data: bytes, *, content_type: str) -> str:
        self._check(uri)
        if uri in self.objects:
            raise BlobExists(uri)
        return self.write_bytes(uri, data, content_type=content_type)

    def replace(self, uri: str, data: bytes, *, content_type: str, generation: str) -> str:
        self._check(uri)
        if uri not in self.objects or str(self.generations[uri]) != generation:
            raise BlobChanged(uri)
        return self.write_bytes(uri, data, content_type=content_type)

    def _check(self, uri: str) -> None:
        if uri in self.forbidden:
            raise BlobForbidden(uri)

    def download_to(self, uri: str, path: Path) -> BlobInfo:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.read_bytes(uri))
        info = self.stat(uri)
        assert info is not None
        return info

    def stat(self, uri: str) -> BlobInfo | None:
        self._check(uri)
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
        self._check(uri)
        return self.objects.pop(uri, None) is not None

    def delete_prefix(self, prefix_uri: str) -> int:
        return sum(self.delete(u) for u in list(self.list(prefix_uri)))

    def signed_url(self, uri: str, **_: object) -> str:
        raise NotImplementedError


@dataclass
class RecordingPublisher:
    """Records what would go to Pub/Sub: (topic, message as JSON data, attributes)."""

    published: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)

    def publish(self, topic: str, message: Any, **attributes: str) -> str:
        data = message if isinstance(message, dict) else json.loads(message.model_dump_json())
        self.published.append((topic, data, attributes))
        return f"msg-{len(self.published)}"

    @property
    def topics(self) -> list[str]:
        return [topic for topic, _, _ in self.published]


@contextlib.contextmanager
def memory_worker(
    settings: Settings, audio: Path, job_id: str = "j-1"
) -> Iterator[tuple[TranscribeServices, MemoryBlobStore, Job]]:
    """The transcribe task's services on in-memory stores, with ``audio`` as a DISPATCHED job's
    upload (the benchmarks run the real task path on it)."""
    job = new_job(job_id=job_id, uri=f"gs://bench-inbox/uploads/{audio.name}")
    jobs, blobs = MemoryJobStore(job), MemoryBlobStore()
    jobs.transition(job.job_id, JobState.DISPATCHED)
    blobs.write_bytes(job.source.uri, audio.read_bytes(), content_type="audio/wav")
    with tempfile.TemporaryDirectory() as cache:
        yield (
            TranscribeServices(
                settings=settings,
                jobs=jobs,
                blobs=blobs,
                publisher=RecordingPublisher(),
                audio=AudioCache(Path(cache), settings, blobs),
            ),
            blobs,
            job,
        )


@dataclass
class FakeLauncher:
    alive: set[str] = field(default_factory=set)
    launches: list[dict[str, Any]] = field(default_factory=list)
    fail_next: bool = False

    def launch(self, job: str, *, env: dict[str, str], task_count: int, timeout_s: int) -> str:
        if self.fail_next:
            self.fail_next = False
            raise ExecutorUnavailable("Cloud Run said 503")
        name = f"projects/p/locations/r/jobs/{job}/executions/{job}-{len(self.launches)}"
        self.launches.append(
            {"job": job, "env": env, "task_count": task_count, "timeout_s": timeout_s}
        )
        self.alive.add(name)
        return name

    def is_alive(self, execution: str) -> bool:
        return execution in self.alive

    def cancel(self, execution: str) -> None:
        self.alive.discard(execution)

    def active_tasks(self, job: str, *, within_s: float) -> int:
        return sum(
            launch["task_count"]
            for i, launch in enumerate(self.launches)
            if launch["job"] == job
            and f"projects/p/locations/r/jobs/{job}/executions/{job}-{i}" in self.alive
        )


@dataclass
class FakeProber:
    duration_s: float = 30.0
    error: InvalidInput | None = None
    calls: int = 0

    def probe(self, uri: str) -> AudioInfo:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return AudioInfo(
            duration_s=self.duration_s, codec="pcm_s16le", sample_rate=16000, channels=1
        )


def make_plan(
    duration: float, chunk: float = 30.0, overlap: float = 2.0, *, job_id: str = "j", **kw: float
) -> ChunkPlan:
    return ChunkPlan.for_job(
        job_id=job_id,
        model="tiny.en",
        language=None,
        duration_s=duration,
        chunk_seconds=chunk,
        overlap_s=overlap,
        **kw,
    )


def make_segment(*words: tuple[float, float, str]) -> Segment:
    return Segment(
        start=words[0][0],
        end=words[-1][1],
        text="".join(w[2] for w in words),
        words=[Word(start=s, end=e, word=w, probability=0.9) for s, e, w in words],
    )


class Clock:
    """Time that moves only when told: ``clock()`` seconds, ``clock.utc()`` the same moment as
    a datetime (from 2026-01-01), ``sleep``/``advance`` move it; ``on_sleep`` runs a step at
    each sleep (what another process does meanwhile)."""

    EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

    def __init__(self) -> None:
        self.now = 0.0
        self.on_sleep: list[Callable[[], None]] = []

    def __call__(self) -> float:
        return self.now

    def utc(self) -> datetime:
        return self.EPOCH + timedelta(seconds=self.now)

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        if self.on_sleep:
            self.on_sleep.pop(0)()


def wav_bytes(seconds: float = 0.1) -> bytes:
    """A valid WAV file of silence: what the sniffers and the size checks accept as audio."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * int(16000 * seconds))
    return out.getvalue()
