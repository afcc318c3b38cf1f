"""The API's routes, described once: the Flask app (``http.create_app``) and the OpenAPI
document are both built from them."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel

from common.domain.jobs import JOB_ID_PATTERN
from functions.api import schemas

# Visible ASCII: what an HTTP header carries unchanged through every proxy.
IDEMPOTENCY_KEY_PATTERN = r"[\x21-\x7e]{1,255}"


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # "header" | "path" (query parameters are the route's ``query`` model)
    description: str
    schema: dict[str, object]
    required: bool = False


@dataclass(frozen=True)
class Route:
    endpoint: str
    method: str
    path: str  # OpenAPI form: /v1/jobs/{job_id}
    summary: str
    ok: int
    response: type[BaseModel] | dict[str, str] | None  # a model, or media type -> description
    body: type[BaseModel] | None = None
    params: tuple[Param, ...] = ()
    query: type[schemas.NoQuery] | None = schemas.NoQuery  # None: the query is not read
    errors: tuple[int, ...] = ()
    auth: bool = True
    rate_limited: bool = True
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def rule(self) -> str:
        return self.path.replace("{job_id}", "<job_id>")


_JOB_ID_PARAM = Param(
    "job_id", "path", "The job's id", {"type": "string", "pattern": f"^{JOB_ID_PATTERN}$"}, True
)
# 403: a subject reserved for gsutil uploads; 503: the rate limiter's store is out.
_AUTH_ERRORS = (401, 403, 429, 503)

ROUTES: tuple[Route, ...] = (
    Route(
        "healthz",
        "GET",
        "/healthz",
        "Liveness",
        200,
        schemas.Health,
        query=None,
        auth=False,
        rate_limited=False,
    ),
    Route(
        "openapi",
        "GET",
        "/openapi.json",
        "This document",
        200,
        {"application/json": "The OpenAPI 3.1 document"},
        query=None,
        auth=False,
        errors=(429, 503),
    ),
    Route(
        "list_models",
        "GET",
        "/v1/models",
        "The Whisper models: what each can do, which this deployment has, each tier's default",
        200,
        schemas.ModelList,
        errors=(400, *_AUTH_ERRORS),
    ),
    Route(
        "create_job",
        "POST",
        "/v1/jobs",
        "Submit audio for transcription and notes",
        202,
        schemas.JobAccepted,
        body=schemas.CreateJob,
        params=(
            Param(
                "Idempotency-Key",
                "header",
                "Retrying with the same key returns the same job and publishes nothing twice",
                {"type": "string", "pattern": f"^{IDEMPOTENCY_KEY_PATTERN}$"},
            ),
        ),
        errors=(400, *_AUTH_ERRORS, 413, 415, 422),
    ),
    Route(
        "list_jobs",
        "GET",
        "/v1/jobs",
        "Your jobs, newest first",
        200,
        schemas.JobPage,
        query=schemas.ListJobsQuery,
        errors=(400, *_AUTH_ERRORS),
    ),
    Route(
        "get_job",
        "GET",
        "/v1/jobs/{job_id}",
        "A job: state, progress, timestamps, error",
        200,
        schemas.JobView,
        params=(_JOB_ID_PARAM,),
        errors=(400, *_AUTH_ERRORS, 404),
    ),
    Route(
        "delete_job",
        "DELETE",
        "/v1/jobs/{job_id}",
        "Cancel the job if it runs; delete its audio and results",
        200,
        schemas.JobDeleted,
        params=(_JOB_ID_PARAM,),
        errors=(400, *_AUTH_ERRORS, 404),
    ),
    Route(
        "get_transcript",
        "GET",
        "/v1/jobs/{job_id}/transcript",
        "The transcript; a subtitle option renders srt or vtt again from transcript.json",
        200,
        {
            "application/json": "format=json: the Transcript document",
            "text/plain": "format=txt (with speakers, a turn a line), or format=rttm: the "
            "speaker turns as NIST RTTM",
            "application/x-subrip": "format=srt",
            "text/vtt": "format=vtt",
            "text/tab-separated-values": "format=tsv: start, end (ms) and text of each segment"
            " (and its speaker)",
        },
        params=(_JOB_ID_PARAM,),
        query=schemas.TranscriptQuery,
        errors=(400, *_AUTH_ERRORS, 404, 409),
    ),
    Route(
        "get_notes",
        "GET",
        "/v1/jobs/{job_id}/notes",
        "The structured notes",
        200,
        {"application/json": "format=json", "text/markdown": "format=md"},
        params=(_JOB_ID_PARAM,),
        query=schemas.NotesQuery,
        errors=(400, *_AUTH_ERRORS, 404, 409),
    ),
    Route(
        "get_audio",
        "GET",
        "/v1/jobs/{job_id}/audio",
        "Where to play the job's audio: a short-lived signed URL of the stored file (or the "
        "https audio_url it was submitted with)",
        200,
        schemas.AudioLink,
        params=(_JOB_ID_PARAM,),
        errors=(400, *_AUTH_ERRORS, 404),
    ),
    Route(
        "name_speakers",
        "PUT",
        "/v1/jobs/{job_id}/speakers",
        "Name the transcript's speakers; the transcript and notes show the names (nothing is "
        "transcribed again)",
        200,
        schemas.SpeakersView,
        body=schemas.SpeakerNames,
        params=(_JOB_ID_PARAM,),
        errors=(400, *_AUTH_ERRORS, 404, 409, 413, 415, 422),
    ),
    Route(
        "create_upload",
        "POST",
        "/v1/uploads",
        "A V4 signed URL to PUT a local file into the inbox; then POST /v1/jobs with audio_url",
        201,
        schemas.UploadTicket,
        body=schemas.CreateUpload,
        errors=(400, *_AUTH_ERRORS, 413, 415, 422),
    ),
)
