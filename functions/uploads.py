"""``on_upload``: an object finalized in the inbox becomes a QUEUED job and a request.

Idempotent on (bucket, object, generation): the job id is derived from them, creation is
atomic, and the request is published once the job records no earlier publish.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from common.errors import Busy
from common.jobs import (
    Job,
    JobError,
    JobOptions,
    JobSource,
    JobState,
    claim_request,
    upload_job_id,
    utcnow,
)
from common.logs import bind, current_traceparent, get_logger
from common.messages import TranscriptionRequested
from functions.bootstrap import Services

log = get_logger(__name__)

# gsutil and gcloud storage upload big files as parts under these folders, then compose them;
# the parts are not audio files of their own.
_COMPOSITE_PARTS = ("parallel_composite_uploads/",)


class StorageObject(BaseModel):
    """The data of a ``google.cloud.storage.object.v1.finalized`` CloudEvent (JSON API)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    bucket: str
    name: str
    generation: str
    size: int = 0
    content_type: str | None = Field(default=None, alias="contentType")
    metadata: dict[str, str] = Field(default_factory=dict)


class Outcome(StrEnum):
    QUEUED = "queued"
    ALREADY_QUEUED = "already_queued"
    REJECTED = "rejected"
    IGNORED = "ignored"


def handle_upload(obj: StorageObject, svc: Services) -> Outcome:
    s = svc.settings
    if obj.bucket != s.buckets.inbox or not obj.name.startswith(s.buckets.inbox_prefix):
        return Outcome.IGNORED
    if obj.name.endswith("/") or any(part in obj.name for part in _COMPOSITE_PARTS):
        return Outcome.IGNORED

    job_id = upload_job_id(obj.bucket, obj.name, obj.generation)
    with bind(job_id=job_id):
        job = Job.new(
            job_id=job_id,
            owner=obj.metadata.get("owner", "gcs-upload"),
            source=JobSource(
                uri=f"gs://{obj.bucket}/{obj.name}",
                bytes=obj.size,
                content_type=obj.content_type,
                generation=obj.generation,
            ),
            options=JobOptions(),
            retention_days=s.limits.retention_days,
            traceparent=current_traceparent(),
        )
        job, created = svc.jobs.create(job)
        if job.state != JobState.QUEUED or job.request_message_id is not None:
            log.info("duplicate upload event; job is %s", job.state, extra={"event": "duplicate"})
            return Outcome.ALREADY_QUEUED

        problem = _reject_reason(obj, svc)
        if problem is not None:
            svc.jobs.transition(job_id, JobState.FAILED, error=problem)
            log.warning("upload rejected: %s", problem.message, extra={"code": problem.code})
            return Outcome.REJECTED

        _publish_request_once(job, svc)
        log.info("queued %s", job.source.uri, extra={"event": "queued"})
        return Outcome.QUEUED if created else Outcome.ALREADY_QUEUED


def _publish_request_once(job: Job, svc: Services) -> None:
    """Publish the transcription request unless it is published or being published.

    Raises ``Busy`` while another delivery holds a fresh claim, so this delivery is retried
    later (and then finds the message id) instead of being acknowledged on a promise.
    """
    token = uuid.uuid4().hex
    lease = timedelta(seconds=2 * svc.settings.limits.publish_timeout_s)
    claimed = svc.jobs.update(
        job.job_id, lambda j: claim_request(j, token, lease=lease, now=utcnow())
    )
    if claimed.request_message_id is not None:
        return
    if claimed.request_claim != token:
        raise Busy(f"job {job.job_id}: another delivery is publishing its request")
    try:
        message_id = svc.publisher.publish(
            svc.settings.topics.transcription_requests,
            TranscriptionRequested(job_id=job.job_id, priority=job.options.priority),
            priority=job.options.priority.value,
        )
    except Exception:
        # Let the next delivery claim at once rather than after the lease.
        svc.jobs.update(
            job.job_id,
            lambda j: (
                j.model_copy(update={"request_claim": None, "request_claimed_at": None})
                if j.request_claim == token
                else None
            ),
        )
        raise
    svc.jobs.update(
        job.job_id,
        lambda j: (
            j.model_copy(update={"request_message_id": message_id})
            if j.request_message_id is None
            else None
        ),
    )


def _reject_reason(obj: StorageObject, svc: Services) -> JobError | None:
    limit = svc.settings.limits.max_upload_bytes
    if obj.size == 0:
        return JobError(code="empty_audio", message=f"{obj.name} is empty (0 bytes)")
    if obj.size > limit:
        return JobError(
            code="too_large",
            message=f"{obj.name} is {obj.size} bytes; the limit is {limit} bytes",
        )
    return None
