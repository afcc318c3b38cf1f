"""The API's request and response bodies. The OpenAPI document is generated from these."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from common.domain.jobs import (
    Job,
    JobState,
    LanguageCode,
    ModelName,
    NotesTemplate,
    Priority,
    WebhookUrl,
)

_STRICT = ConfigDict(extra="forbid", strict=True)


def _integral(value: object) -> object:
    """JSON Schema's integer includes 7860.0; strict parsing would refuse it."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# One name, no folders, no control characters, and something left once it is made safe.
FILENAME_PATTERN = r"^[^/\\\x00-\x1f\x7f]*[A-Za-z0-9][^/\\\x00-\x1f\x7f]*$"


class CreateJob(BaseModel):
    """POST /v1/jobs."""

    model_config = _STRICT

    audio_url: str = Field(
        min_length=1,
        max_length=2048,
        description="gs://bucket/object (your own uploads, see POST /v1/uploads) or https://; "
        "object names with '.', '..' or empty segments, or their percent-encoded forms, are "
        "refused",
    )
    priority: Priority = Priority.NORMAL
    language: LanguageCode | None = None
    model: ModelName | None = None
    notes_template: NotesTemplate = NotesTemplate.MEETING
    webhook_url: WebhookUrl | None = None


class CreateUpload(BaseModel):
    """POST /v1/uploads: where to PUT a local file before submitting it with POST /v1/jobs."""

    model_config = _STRICT

    filename: str = Field(
        min_length=1,
        max_length=200,
        description="A file name (no folders); characters outside A-Z a-z 0-9 . _ - become _",
        json_schema_extra={"pattern": FILENAME_PATTERN},  # checked with code bad_filename
    )
    content_type: str = Field(
        default="application/octet-stream",
        max_length=100,
        pattern=r"^((audio|video)/[A-Za-z0-9.+-]+|application/octet-stream|application/ogg)$",
    )
    # Its maximum is the deployment's (see openapi.document), checked with audio_too_large.
    size_bytes: Annotated[int, Field(ge=1), BeforeValidator(_integral)] | None = None


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class OptionsView(BaseModel):
    priority: Priority
    language: str | None
    model: str | None
    notes_template: NotesTemplate
    webhook_url: str | None


class SourceView(BaseModel):
    uri: str
    bytes: int | None
    duration_s: float | None
    content_type: str | None


class Links(BaseModel):
    self: str
    transcript: str
    notes: str


class JobView(BaseModel):
    job_id: str
    state: JobState
    progress: float
    created_at: datetime
    updated_at: datetime
    state_times: dict[str, datetime] = Field(description="When the job entered each state")
    options: OptionsView
    source: SourceView
    error: ErrorDetail | None
    outputs: list[str] = Field(description="Results that exist, e.g. transcript, notes")
    links: Links

    @classmethod
    def of(cls, job: Job) -> JobView:
        base = f"/v1/jobs/{job.job_id}"
        return cls(
            job_id=job.job_id,
            state=job.state,
            progress=job.progress,
            created_at=job.created_at,
            updated_at=job.updated_at,
            state_times={state.value: at for state, at in job.state_times.items()},
            options=OptionsView(**job.options.model_dump()),
            source=SourceView(
                uri=job.source.uri,
                bytes=job.source.bytes,
                duration_s=job.source.duration_s,
                content_type=job.source.content_type,
            ),
            error=ErrorDetail(**job.error.model_dump()) if job.error else None,
            outputs=sorted(job.outputs),
            links=Links(self=base, transcript=f"{base}/transcript", notes=f"{base}/notes"),
        )


class JobAccepted(JobView):
    status_url: str = Field(description="Absolute URL of GET /v1/jobs/{job_id}")
    replayed: bool = Field(description="True when an Idempotency-Key matched an earlier job")


class JobPage(BaseModel):
    jobs: list[JobView]
    next_page_token: str | None


class JobDeleted(BaseModel):
    job_id: str
    state: JobState
    cancelled: bool = Field(description="True when this request stopped a running job")
    deleted_objects: int = Field(description="Audio and result objects removed by this request")


class UploadTicket(BaseModel):
    upload_url: str = Field(description="V4 signed URL; PUT the file's bytes to it")
    method: Literal["PUT"] = "PUT"
    headers: dict[str, str] = Field(description="Headers the PUT must carry, exactly")
    audio_url: str = Field(description="gs:// URI to give POST /v1/jobs once uploaded")
    expires_at: datetime


class Health(BaseModel):
    status: Literal["ok"] = "ok"
