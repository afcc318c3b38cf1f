"""``on_upload``: an object finalized in the inbox becomes a QUEUED job and a request.

Idempotent on (bucket, object, generation): the job id is derived from them, creation is
atomic, and the request is published once the job records no earlier publish.

A rejected upload (empty, too large, not audio, bad options in its metadata) becomes a job
that is created FAILED, with the reason as its error, and nothing is published.

Ownership: a finalize event does not say who wrote the object, and object metadata is
whatever the writer chose, so an upload through gsutil belongs to ``Settings.auth.upload_owner``
(operators with write access to the bucket). Users upload through POST /v1/uploads into a
folder of their own outside ``inbox_prefix`` and submit with POST /v1/jobs, which knows them.
"""

from __future__ import annotations

from enum import StrEnum

from opentelemetry import trace
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from common.config.settings import Settings
from common.domain.blobs import check_object_name
from common.domain.errors import AudionotesError, BlobNotFound, Busy, InvalidInput
from common.domain.jobs import (
    Job,
    JobError,
    JobOptions,
    JobSource,
    JobState,
    advance,
    upload_job_id,
    utcnow,
    with_request_message_id,
)
from common.domain.lease import Lease, fresh
from common.domain.messages import TranscriptionRequested
from common.domain.transcription_plan import resolve_model
from common.edge.sniff import HEAD_BYTES, sniff
from common.edge.ssrf import UrlPolicy, check_with_policy
from common.obs.logs import bind, current_traceparent, get_logger
from functions.bootstrap import Services

log = get_logger(__name__)

# gsutil and gcloud storage upload big files as parts under these folders, then compose them;
# the parts are not audio files of their own.
_COMPOSITE_PARTS = ("parallel_composite_uploads/", "/gcloud/tmp/parallel_composite_uploads/")
_COMPOSITE_SUFFIX = "_.gstmp"

# x-goog-meta-<name> headers arrive as metadata[<name>]; '-' and '_' are both accepted.
_OPTION_KEYS = {
    "priority": "priority",
    "language": "language",
    "model": "model",
    "notes-template": "notes_template",
    "notes_template": "notes_template",
    "webhook-url": "webhook_url",
    "webhook_url": "webhook_url",
    "task": "task",
    "vocabulary": "vocabulary",  # comma-separated: "Priya, Kubernetes"
    "speakers": "speakers",  # auto, none, 3 or 2-5
    "notes-instructions": "notes_instructions",  # free text for the notes prompt
    "notes_instructions": "notes_instructions",
}
# Options whose refusal has a code of its own (JobOptions raises it): the job says that code.
_OWN_CODES = frozenset({"bad_speakers", "bad_notes_instructions"})
# Which header a model check's refusal is about.
_MODEL_CHECK_KEYS = {"model_language_mismatch": "language", "model_cannot_translate": "task"}


class StorageObject(BaseModel):
    """The data of a ``google.cloud.storage.object.v1.finalized`` CloudEvent (JSON API)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    bucket: str
    name: str
    generation: str
    size: int = 0
    content_type: str | None = Field(default=None, alias="contentType")
    metadata: dict[str, str] = Field(default_factory=dict)


class UploadOutcome(StrEnum):
    QUEUED = "queued"
    ALREADY_QUEUED = "already_queued"
    REJECTED = "rejected"
    IGNORED = "ignored"


def handle_upload(obj: StorageObject, svc: Services) -> UploadOutcome:
    s = svc.settings
    if obj.bucket != s.buckets.inbox or not obj.name.startswith(s.buckets.inbox_prefix):
        return UploadOutcome.IGNORED
    if is_placeholder_or_part(obj.name):
        return UploadOutcome.IGNORED

    job_id = upload_job_id(obj.bucket, obj.name, obj.generation)
    trace.get_current_span().set_attribute("job_id", job_id)
    with bind(job_id=job_id):
        existing = _find(svc, job_id)
        if existing is not None and (
            existing.state != JobState.QUEUED
            or existing.coordination.request_message_id is not None
        ):
            log.info("duplicate upload event; job is %s", existing.state, extra={"event": "dup"})
            return UploadOutcome.ALREADY_QUEUED

        options, problem = options_from_metadata(obj.metadata, s)
        problem = problem or _reject_reason(obj, svc)
        job = Job.new(
            job_id=job_id,
            owner=s.auth.upload_owner,
            source=JobSource(
                uri=f"gs://{obj.bucket}/{obj.name}",
                bytes=obj.size,
                content_type=obj.content_type,
                generation=obj.generation,
            ),
            options=options,
            retention_days=s.limits.retention_days,
            traceparent=current_traceparent(),
        )
        if problem is not None:
            # Created FAILED in one write: no moment where a QUEUED job waits for nothing.
            job, _ = advance(job, JobState.FAILED, error=problem)
        job, created = svc.jobs.create(job)
        if job.state == JobState.FAILED and job.coordination.request_message_id is None:
            if created:
                log.warning("upload rejected: %s", job.error, extra={"code": "rejected"})
            return UploadOutcome.REJECTED
        if not ensure_published(svc, job, created=created):
            return UploadOutcome.ALREADY_QUEUED
        log.info("queued %s", job.source.uri, extra={"event": "queued"})
        return UploadOutcome.QUEUED if created else UploadOutcome.ALREADY_QUEUED


def ensure_published(svc: Services, job: Job, *, created: bool) -> bool:
    """Publish the request of a QUEUED job that has none recorded; True if this call did.

    The creator publishes at once. Anyone else (a concurrent duplicate) publishes only once
    the creator has had its full publish timeout and more, else raises ``Busy`` (redelivered):
    duplicates at the same moment never publish twice, and a creator that died is covered.
    """
    if job.state != JobState.QUEUED or job.coordination.request_message_id is not None:
        return False
    # The creator's lease on publishing, taken when it created the job.
    ttl_s = svc.settings.limits.publish_timeout_s * 2 + 5
    creator = Lease(holder="creator", taken_at=job.created_at, ttl_s=ttl_s)
    if not created and fresh(creator, utcnow()):
        raise Busy(f"job {job.job_id} is being published by its creator")
    publish_request(svc, job)
    return True


def publish_request(svc: Services, job: Job) -> str:
    """Publish the transcription request for a QUEUED job and record its message id.

    Shared by on_upload and the API. A crash between the publish and the record leads to a
    second publish on redelivery; dispatch is idempotent on the job, so that is harmless.
    """
    message_id = svc.publisher.publish(
        svc.settings.topics.transcription_requests,
        TranscriptionRequested(job_id=job.job_id, priority=job.options.priority),
        priority=job.options.priority.value,
        # The job's trace, also when a redelivery (another trace) publishes for a creator
        # that died: every later stage continues the trace the job started in.
        **({"traceparent": job.traceparent} if job.traceparent else {}),
    )
    svc.jobs.update(job.job_id, lambda j: with_request_message_id(j, message_id))
    return message_id


def is_placeholder_or_part(name: str) -> bool:
    """Folder placeholders ("a/", "a_$folder$") and parallel composite upload parts."""
    if name.endswith("/") or name.endswith("_$folder$"):
        return True
    if name.endswith(_COMPOSITE_SUFFIX):
        return True
    return any(part in name for part in _COMPOSITE_PARTS)


def options_from_metadata(
    metadata: dict[str, str], settings: Settings
) -> tuple[JobOptions, JobError | None]:
    """Job options from ``x-goog-meta-*``; unknown metadata keys are the writer's business."""
    raw: dict[str, object] = {
        field: value.strip()
        for key, value in metadata.items()
        if (field := _OPTION_KEYS.get(key.lower())) is not None
    }
    if isinstance(vocabulary := raw.get("vocabulary"), str):
        raw["vocabulary"] = [term for term in vocabulary.split(",") if term.strip()]
    try:
        options = JobOptions.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        details = "; ".join(
            f"x-goog-meta-{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}"
            for e in errors
        )
        code = next((e["type"] for e in errors if e["type"] in _OWN_CODES), "bad_options")
        return JobOptions(), JobError(code=code, message=details)
    try:
        resolve_model(options, settings)
    except InvalidInput as exc:
        header = f"x-goog-meta-{_MODEL_CHECK_KEYS.get(exc.code, 'model')}"
        return JobOptions(), JobError(code=exc.code, message=f"{header}: {exc.message}")
    if options.webhook_url:
        try:
            check_with_policy(options.webhook_url, UrlPolicy.from_settings(settings))
        except AudionotesError as exc:
            message = f"x-goog-meta-webhook-url: {exc.message}"
            return JobOptions(), JobError(code=exc.code, message=message)
    return options, None


def _reject_reason(obj: StorageObject, svc: Services) -> JobError | None:
    try:
        check_object_name(obj.name)
    except InvalidInput as exc:
        return JobError(code=exc.code, message=exc.message)
    limit = svc.settings.limits.max_upload_bytes
    if obj.size == 0:
        return JobError(code="empty_audio", message=f"{obj.name} is empty (0 bytes)")
    if obj.size > limit:
        return JobError(
            code="too_large",
            message=f"{obj.name} is {obj.size} bytes; the limit is {limit} bytes",
        )
    uri = f"gs://{obj.bucket}/{obj.name}"
    try:
        head = svc.blobs.read_range(uri, 0, HEAD_BYTES, generation=obj.generation)
    except BlobNotFound:
        return JobError(
            code="source_missing",
            message=f"{obj.name} (generation {obj.generation}) was deleted or replaced "
            "before it could be read",
        )
    sniffed = sniff(head)
    if not sniffed.is_audio:
        return JobError(
            code="not_audio",
            message=f"{obj.name} is not audio: its content looks like {sniffed.description} "
            "(accepted: wav, mp3, m4a/mp4, aac, flac, ogg/opus, webm, aiff, amr, wma)",
        )
    return None


def _find(svc: Services, job_id: str) -> Job | None:
    from common.domain.errors import JobNotFound

    try:
        return svc.jobs.get(job_id)
    except JobNotFound:
        return None
