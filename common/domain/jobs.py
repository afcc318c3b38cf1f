"""The job: its model, its states and the only transitions allowed between them.

Pure domain code: no I/O. ``FirestoreJobStore`` applies ``advance`` inside a transaction.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from common.domain.errors import InvalidInput, InvalidTransition
from common.domain.lease import Lease, expire, fresh, holds, release, take_over
from common.domain.speakers import SPEAKERS_DESCRIPTION, SpeakerSpec, normalized, renamed
from common.domain.transcripts import TranscriptionSummary
from common.domain.whisper_models import WhisperTask


class JobState(StrEnum):
    QUEUED = "QUEUED"
    DISPATCHED = "DISPATCHED"
    TRANSCRIBING = "TRANSCRIBING"
    TRANSCRIBED = "TRANSCRIBED"
    SUMMARIZING = "SUMMARIZING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


# The happy path, in order. A job may skip ahead on it (a cached transcript goes from
# DISPATCHED straight to TRANSCRIBED) but never move back.
PIPELINE: tuple[JobState, ...] = (
    JobState.QUEUED,
    JobState.DISPATCHED,
    JobState.TRANSCRIBING,
    JobState.TRANSCRIBED,
    JobState.SUMMARIZING,
    JobState.COMPLETED,
)
FINAL_STATES = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})


def can_transition(current: JobState, requested: JobState) -> bool:
    if current in FINAL_STATES:
        return False
    if requested in (JobState.FAILED, JobState.CANCELLED):
        return True
    return PIPELINE.index(requested) > PIPELINE.index(current)


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


class NotesTemplate(StrEnum):
    MEETING = "meeting"
    LECTURE = "lecture"
    INTERVIEW = "interview"
    DIARY = "diary"


# Recordings of several people: diarized unless the job says "none". A voice memo is one
# person, so it pays nothing for speakers unless asked.
SPEAKERS_BY_DEFAULT = frozenset(
    {NotesTemplate.MEETING, NotesTemplate.INTERVIEW, NotesTemplate.LECTURE}
)

# Every job id this system mints (``upload_job_id``, ``api_job_id``). The API refuses any other
# shape before it reaches Firestore, which reserves ids such as ``__x__``.
JOB_ID_PATTERN = r"[auk]-[0-9a-f]{32}"

# The option fields, defined once: the job model and the API's request model share them.
ModelName = Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
LanguageCode = Annotated[
    str, Field(pattern=r"^[a-z]{2,3}$", description="ISO 639-1/3 code; None = detect")
]
# Names and jargon the decoder should expect (faster-whisper's hotwords): printable text only,
# since a term goes into the decoder's prompt.
VocabularyTerm = Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[^\x00-\x1f\x7f]+$")]
MAX_VOCABULARY_TERMS = 100
SpeakersOption = Annotated[
    str,
    Field(
        pattern=r"^(auto|none|[1-9][0-9]?|[1-9][0-9]?-[1-9][0-9]?)$",
        description=SPEAKERS_DESCRIPTION,
        examples=["auto", "2", "2-5", "none"],
    ),
]
# Free text the notes prompt carries for the user (common/notes/prompts.py), e.g. "list every
# number mentioned" or "write in French": at most this many characters as sent, newlines and
# tabs but no other control character (C0, DEL, C1); surrounding whitespace is dropped, and
# blank means none. The job, the API's schema and the CLI use these; a test holds the README.
MAX_NOTES_INSTRUCTIONS_CHARS = 2000
_CONTROL_BUT_NEWLINE_AND_TAB = r"\x00-\x08\x0b-\x1f\x7f-\x9f"
NOTES_INSTRUCTIONS_PATTERN = f"^[^{_CONTROL_BUT_NEWLINE_AND_TAB}]*$"
_NOTES_INSTRUCTIONS_CONTROL = re.compile(f"[{_CONTROL_BUT_NEWLINE_AND_TAB}]")
NotesInstructions = Annotated[
    str,
    Field(
        max_length=MAX_NOTES_INSTRUCTIONS_CHARS,
        pattern=NOTES_INSTRUCTIONS_PATTERN,
        description=f"Extra instructions for the notes, at most {MAX_NOTES_INSTRUCTIONS_CHARS} "
        "characters (newlines and tabs, no other control character), added to the notes "
        "prompt as the user's: they may shape what the notes say and how (e.g. 'list every "
        "number mentioned', 'write in French'), never the notes' format or the rule to use "
        "only what the transcript says. Trimmed; blank is none",
        examples=["List every number mentioned.", "Write the notes in French."],
    ),
]
# Its scheme and host are checked by the SSRF guard (common/edge/ssrf.py), with precise codes.
WebhookUrl = Annotated[
    str, Field(min_length=1, max_length=2048, description="https:// URL called when the job ends")
]


class JobOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    priority: Priority = Priority.NORMAL
    model: ModelName | None = None
    language: LanguageCode | None = None
    task: WhisperTask = WhisperTask.TRANSCRIBE
    vocabulary: list[VocabularyTerm] = Field(default_factory=list, max_length=MAX_VOCABULARY_TERMS)
    notes_template: NotesTemplate = NotesTemplate.MEETING
    # None: the template's default (``speaker_spec``).
    speakers: SpeakersOption | None = None
    webhook_url: WebhookUrl | None = None
    notes_instructions: NotesInstructions | None = None

    @field_validator("notes_instructions", mode="before")
    @classmethod
    def _notes_instructions(cls, value: object) -> object:
        """Refused with its code (too long, a control character); trimmed; blank is None."""
        if not isinstance(value, str):
            return value  # None, or a wrong type that the field refuses
        if len(value) > MAX_NOTES_INSTRUCTIONS_CHARS:
            raise PydanticCustomError(
                "bad_notes_instructions",
                "at most {limit} characters, not {length}",
                {"limit": MAX_NOTES_INSTRUCTIONS_CHARS, "length": len(value)},
            )
        if control := _NOTES_INSTRUCTIONS_CONTROL.search(value):
            raise PydanticCustomError(
                "bad_notes_instructions",
                "control character {char} at position {at}: only newlines and tabs are allowed",
                {"char": f"U+{ord(control.group()):04X}", "at": control.start()},
            )
        return value.strip() or None

    @field_validator("speakers", mode="before")
    @classmethod
    def _speakers(cls, value: object) -> object:
        """'auto', 'none', '3' or '2-5' (a JSON number is a count, 3.0 too: JSON Schema's
        integer includes it); refused with its code."""
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if value is None or isinstance(value, bool) or not isinstance(value, str | int):
            return value
        try:
            return normalized(value)
        except InvalidInput as exc:
            raise PydanticCustomError("bad_speakers", exc.message) from None

    @property
    def speaker_spec(self) -> SpeakerSpec:
        if self.speakers is not None:
            return SpeakerSpec.parse(self.speakers)
        return SpeakerSpec(enabled=self.notes_template in SPEAKERS_BY_DEFAULT)

    @field_validator("vocabulary")
    @classmethod
    def _distinct_terms(cls, terms: list[str]) -> list[str]:
        """Trimmed, each once, in the caller's order (the order is the prompt's)."""
        seen: dict[str, None] = {}
        for term in terms:
            if term.strip():
                seen.setdefault(term.strip(), None)
        return list(seen)


class JobSource(BaseModel):
    uri: str
    sha256: str | None = None
    bytes: int | None = Field(default=None, ge=0)
    duration_s: float | None = Field(default=None, ge=0)
    content_type: str | None = None
    generation: str | None = None


class JobError(BaseModel):
    code: str
    message: str


class Coordination(BaseModel):
    """How the handlers working on one job coordinate, beside its state (``Job.coordination``;
    the document field ``coordination``)."""

    # Recorded once the transcription request is published: a redelivered event publishes
    # again only if the first delivery died between creating the job and publishing.
    request_message_id: str | None = None
    # The dispatch delivery launching this job's execution holds this lease until it records
    # the execution's name; a stale one belongs to a delivery that died.
    launch: Lease | None = None
    # A short job that shares a lane execution with others (common/domain/lanes.py), and the
    # chunk plan that execution runs it with (the JSON a dedicated execution gets in its env).
    batch_lane: str | None = None
    batch_plan: str | None = None
    # Pull workers (``Settings.workers.mode`` workers): the tier whose queues hold the job's
    # chunks and how many it has (dispatch scales by their sum), the plan they follow, when
    # they were queued (a redelivered dispatch queues only if they never were) and how often
    # the sweep queued them again.
    work_tier: str | None = None
    work_chunks: int = Field(default=0, ge=0)
    work_plan: str | None = None
    work_queued_at: datetime | None = None
    work_requeues: int = Field(default=0, ge=0)
    # Deliveries of its transcript-ready message that found every model provider out and
    # left the job to wait for one (functions/notes.py): bounded below the dead-letter limit.
    provider_waits: int = Field(default=0, ge=0)
    # Held by the job whose notes delivery is making this job's notes in the same request
    # (functions/notes.py); its own delivery waits while the lease is fresh.
    notes_batch: Lease | None = None


class Job(BaseModel):
    """The job document in Firestore (collection ``Settings.collections.jobs``)."""

    job_id: str
    owner: str
    state: JobState = JobState.QUEUED
    created_at: datetime
    updated_at: datetime
    state_times: dict[JobState, datetime] = Field(default_factory=dict)
    options: JobOptions = Field(default_factory=JobOptions)
    source: JobSource
    progress: float = Field(default=0.0, ge=0.0, le=1.0)
    attempts: int = Field(default=0, ge=0)
    error: JobError | None = None
    outputs: dict[str, str] = Field(default_factory=dict)
    execution: str | None = None
    usage: dict[str, float] = Field(default_factory=dict)
    # Set with the transcript: the language heard (or forced) and how trustworthy it reads.
    transcription: TranscriptionSummary | None = None
    # Names given to the transcript's speaker labels (PUT /v1/jobs/{id}/speakers).
    speaker_names: dict[str, str] = Field(default_factory=dict)
    cost_usd: float = Field(default=0.0, ge=0.0)
    expire_at: datetime
    traceparent: str | None = None
    coordination: Coordination = Field(default_factory=Coordination)

    @classmethod
    def new(
        cls,
        *,
        job_id: str,
        owner: str,
        source: JobSource,
        options: JobOptions | None = None,
        retention_days: int,
        traceparent: str | None = None,
        now: datetime | None = None,
    ) -> Job:
        now = now or utcnow()
        return cls(
            job_id=job_id,
            owner=owner,
            created_at=now,
            updated_at=now,
            state_times={JobState.QUEUED: now},
            options=options or JobOptions(),
            source=source,
            expire_at=now + timedelta(days=retention_days),
            traceparent=traceparent,
        )

    def to_document(self) -> dict[str, Any]:
        # Python mode keeps datetimes as datetimes: Firestore stores them as timestamps,
        # which its TTL policy on expire_at requires.
        return self.model_dump(mode="python")

    def coordinated(self, **changes: object) -> Job:
        """This job with ``changes`` to its coordination fields."""
        return self.model_copy(
            update={"coordination": self.coordination.model_copy(update=changes)}
        )


def advance(
    job: Job,
    requested: JobState,
    *,
    now: datetime | None = None,
    error: JobError | None = None,
    outputs: dict[str, str] | None = None,
    execution: str | None = None,
) -> tuple[Job, bool]:
    """Return ``(job after the change, whether anything changed)``.

    Asking for the state the job is already in is a no-op, so that a redelivered event
    changes nothing; any other backwards or out-of-final move raises ``InvalidTransition``.
    """
    if requested == job.state:
        return job, False
    if not can_transition(job.state, requested):
        raise InvalidTransition(job.job_id, job.state, requested)
    now = now or utcnow()
    changes: dict[str, Any] = {
        "state": requested,
        "updated_at": now,
        "state_times": {**job.state_times, requested: now},
    }
    if requested == JobState.COMPLETED:
        changes["progress"] = 1.0
    if error is not None:
        changes["error"] = error
    if outputs:
        changes["outputs"] = {**job.outputs, **outputs}
    if execution is not None:
        changes["execution"] = execution
    return job.model_copy(update=changes), True


# Changes the handlers apply with ``JobStore.update``: pure, since a store may run one again
# on contention; each returns the new job, or None for no change. -------------------------


def dispatched(job: Job, duration_s: float, **coordination: object) -> Job | None:
    """QUEUED -> DISPATCHED with the probed duration and ``coordination``: a launch lease, or
    the batch lane the job waits in."""
    if job.state != JobState.QUEUED:
        return None
    moved, _ = advance(job, JobState.DISPATCHED)
    source = moved.source.model_copy(update={"duration_s": duration_s})
    return moved.model_copy(update={"source": source}).coordinated(**coordination)


def work_queued(job: Job, now: datetime, *, requeue: bool) -> Job | None:
    """Record that the job's chunks are in the work queue (None: already recorded, unless
    this is the sweep's ``requeue``)."""
    c = job.coordination
    if job.state not in (JobState.DISPATCHED, JobState.TRANSCRIBING) or c.work_plan is None:
        return None
    if c.work_queued_at is not None and not requeue:
        return None
    requeues = c.work_requeues + (1 if requeue and c.work_queued_at is not None else 0)
    return job.coordinated(work_queued_at=now, work_requeues=requeues).model_copy(
        update={"updated_at": now}
    )


def launch_taken_over(job: Job, seen: Job, claim: str, now: datetime, lease_s: float) -> Job | None:
    """Replace the stale launch lease or dead execution we saw with our lease, unless someone
    did first; each take-over counts as an attempt."""
    running = job.state in (JobState.DISPATCHED, JobState.TRANSCRIBING)
    if not running or job.execution != seen.execution:
        return None
    launch = take_over(job.coordination.launch, seen.coordination.launch, claim, now, lease_s)
    if launch is None:
        return None
    return job.model_copy(update={"attempts": job.attempts + 1}).coordinated(launch=launch)


def launch_settled(job: Job, claim: str, execution: str | None) -> Job | None:
    """Swap our launch lease for the execution's name, or (``None``: the launch failed) let
    it lapse so the redelivery may launch at once rather than after the lease."""
    launch = job.coordination.launch
    if launch is None or not holds(launch, claim):
        return None
    if execution is None and job.coordination.batch_lane is not None:
        # Back in its lane's queue: the redelivery offers it again (or a lane worker takes it).
        return job.coordinated(launch=release(launch, claim))
    if execution is None:
        return job.coordinated(launch=expire(launch, claim))
    return job.model_copy(update={"execution": execution}).coordinated(
        launch=release(launch, claim)
    )


def with_request_message_id(job: Job, message_id: str) -> Job | None:
    """The first published transcription request's id; a later one changes nothing."""
    if job.coordination.request_message_id is not None:
        return None
    return job.coordinated(request_message_id=message_id)


def with_source_digest(job: Job, sha256: str, size: int) -> Job | None:
    if job.source.sha256 == sha256:
        return None
    return job.model_copy(
        update={"source": job.source.model_copy(update={"sha256": sha256, "bytes": size})}
    )


def with_speaker_names(job: Job, change: Mapping[str, str | None], now: datetime) -> Job | None:
    """The job's speaker names with ``change`` applied (None or "" restores a label); None
    when that changes nothing, ``InvalidInput`` when two speakers would share a name."""
    names = renamed(job.speaker_names, change)
    if names == job.speaker_names:
        return None
    return job.model_copy(update={"speaker_names": names, "updated_at": now})


def with_usage(job: Job, usage: Mapping[str, float]) -> Job:
    """``usage`` added to the job's, key by key."""
    merged = dict(job.usage)
    for key, value in usage.items():
        merged[key] = merged.get(key, 0.0) + value
    return job.model_copy(update={"usage": merged})


def transcribed(
    job: Job, outputs: dict[str, str], usage: Mapping[str, float], summary: TranscriptionSummary
) -> Job | None:
    """-> TRANSCRIBED with the transcript's ``outputs`` and ``summary`` (what it says of itself:
    language, model, quality), and ``usage`` added, in one write, so whoever sees the state sees
    the summary too; None if the job is TRANSCRIBED already, ``InvalidTransition`` past it."""
    if job.state is JobState.TRANSCRIBED:
        return None
    moved, _ = advance(job, JobState.TRANSCRIBED, outputs=outputs)
    return with_usage(moved, usage).model_copy(update={"transcription": summary})


def one_more_provider_wait(job: Job) -> Job:
    return job.coordinated(provider_waits=job.coordination.provider_waits + 1)


def notes_claimed_for(job: Job, holder: str, now: datetime, lease_s: float) -> Job | None:
    """TRANSCRIBED -> SUMMARIZING under ``holder``'s notes batch lease (None: its own delivery
    got there first)."""
    if job.state is not JobState.TRANSCRIBED:
        return None
    moved, _ = advance(job, JobState.SUMMARIZING)
    return moved.coordinated(notes_batch=Lease(holder=holder, taken_at=now, ttl_s=lease_s))


def notes_released(job: Job, holder: str) -> Job | None:
    """``holder``'s notes batch failed: the job's own delivery makes its notes."""
    if not holds(job.coordination.notes_batch, holder):
        return None
    return job.coordinated(notes_batch=release(job.coordination.notes_batch, holder))


def held_by_notes_batch(job: Job, now: datetime) -> bool:
    """Whether another job's notes delivery is making this job's notes right now."""
    batch = job.coordination.notes_batch
    return batch is not None and batch.holder != job.job_id and fresh(batch, now)


def completed(
    job: Job, outputs: dict[str, str], usage: Mapping[str, float], cost_usd: float
) -> Job | None:
    """-> COMPLETED with ``outputs``, and ``usage`` and ``cost_usd`` added to the job's."""
    if job.state is JobState.COMPLETED:
        return None
    done, _ = advance(job, JobState.COMPLETED, outputs=outputs)
    return with_usage(done, usage).model_copy(
        update={"cost_usd": round(job.cost_usd + cost_usd, 8)}
    )


def failed_if_unchanged(current: Job, seen: Job, error: JobError) -> Job | None:
    """-> FAILED, unless the job moved on (state or execution) since ``seen`` was read."""
    if (current.state, current.execution) != (seen.state, seen.execution):
        return None
    failed, _ = advance(current, JobState.FAILED, error=error)
    return failed


def upload_job_id(bucket: str, name: str, generation: str | int) -> str:
    """Deterministic: the same object version always maps to the same job."""
    digest = hashlib.sha256(f"gs://{bucket}/{name}#{generation}".encode()).hexdigest()
    return f"u-{digest[:32]}"


def api_job_id(owner: str, idempotency_key: str | None) -> str:
    """The same (owner, key) maps to the same job; without a key every call is new."""
    if idempotency_key is None:
        return f"a-{uuid.uuid4().hex}"
    digest = hashlib.sha256(f"{owner}\0{idempotency_key}".encode()).hexdigest()
    return f"k-{digest[:32]}"


def utcnow() -> datetime:
    return datetime.now(UTC)
