"""The API's query strings, request and response bodies. The OpenAPI document is generated
from these."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from common.config.settings import Tier, Transcription
from common.domain.jobs import (
    JOB_ID_PATTERN,
    Job,
    JobOptions,
    JobState,
    NotesTemplate,
    Priority,
)
from common.domain.ports import MAX_PAGE_SIZE
from common.domain.speakers import (
    LABEL_PATTERN,
    MAX_NAME_CHARS,
    MAX_SPEAKERS,
    SPEAKERS_DESCRIPTION,
    SpeakerTalk,
)
from common.domain.subtitles import (
    DEFAULT_OPTIONS,
    HighlightWords,
    MaxCueSeconds,
    MaxLineChars,
    MaxLines,
    MinGapSeconds,
    SubtitleOptions,
)
from common.domain.transcripts import NOTES_FORMATS, TRANSCRIPT_FORMATS, TranscriptionSummary
from common.domain.whisper_models import CATALOG, WhisperTask

_STRICT = ConfigDict(extra="forbid", strict=True)


def _integral(value: object) -> object:
    """JSON Schema's integer includes 7860.0; strict parsing would refuse it."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# One name, no folders, no control characters, and something left once it is made safe.
FILENAME_PATTERN = r"^[^/\\\x00-\x1f\x7f]*[A-Za-z0-9][^/\\\x00-\x1f\x7f]*$"


class CreateJob(JobOptions):
    """POST /v1/jobs: the audio and the job's options (the fields of ``JobOptions``)."""

    model_config = _STRICT

    audio_url: str = Field(
        min_length=1,
        max_length=2048,
        description="gs://bucket/object (your own uploads, see POST /v1/uploads) or https://; "
        "object names with '.', '..' or empty segments, or their percent-encoded forms, are "
        "refused",
    )


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


# PUT /v1/jobs/{job_id}/speakers. The codes are the ones the service's checks use
# (common/domain/speakers.check_names), so a refusal reads the same wherever it is caught.
_LABEL = re.compile(f"^{LABEL_PATTERN}$")
_NAME_PATTERN = r"^[^\x00-\x1f\x7f]*$"


def _speaker_label(value: object) -> object:
    if isinstance(value, str) and not _LABEL.match(value):
        raise PydanticCustomError(
            "unknown_speaker",
            "{label} is not a speaker label (SPEAKER_1, SPEAKER_2, ...)",
            {"label": repr(value)},
        )
    return value


def _speaker_name(value: object) -> object:
    if isinstance(value, str) and (
        len(value) > MAX_NAME_CHARS or not re.match(_NAME_PATTERN, value)
    ):
        raise PydanticCustomError(
            "bad_speaker_name",
            f"a name must be at most {MAX_NAME_CHARS} printable characters",
        )
    return value


SpeakerLabel = Annotated[
    str, StringConstraints(pattern=f"^{LABEL_PATTERN}$"), BeforeValidator(_speaker_label)
]
SpeakerName = Annotated[
    str,
    StringConstraints(max_length=MAX_NAME_CHARS, pattern=_NAME_PATTERN),
    BeforeValidator(_speaker_name),
]


class SpeakerNames(
    RootModel[
        Annotated[
            dict[SpeakerLabel, SpeakerName | None],
            Field(max_length=MAX_SPEAKERS),
        ]
    ]
):
    """PUT /v1/jobs/{job_id}/speakers: a name per speaker label; null or "" gives the label
    back. Labels not named here keep their names."""

    model_config = ConfigDict(
        strict=True,
        # Any other key is refused (unknown_speaker): say so, as patternProperties alone do not.
        json_schema_extra={
            "additionalProperties": False,
            "examples": [{"SPEAKER_1": "Priya", "SPEAKER_2": None}],
        },
    )


# --- query strings: each parameter once, unknown ones refused; a bad value is 400 bad_<name> ---

# A page token is base64url (unpadded) of a job id of the caller's (see FirestoreJobStore.list).
PAGE_TOKEN_PATTERN = r"[A-Za-z0-9_-]{46}"
# A state as the query names it: JobState's values, or the same in lower case.
STATE_NAMES = (*(s.value for s in JobState), *(s.value.lower() for s in JobState))
JOB_ID = re.compile(f"^{JOB_ID_PATTERN}$")  # in the path, and inside a page token


def _state_name(value: object) -> object:
    if value not in STATE_NAMES:
        states = ", ".join(s.value for s in JobState)
        raise ValueError(f"must be one of {states} (or in lower case)")
    return str(value).upper()


def _issued_token(value: str) -> str:
    """Only a token this API could have issued (base64url of a job id) reaches the store."""
    try:
        job_id = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        job_id = ""
    if not JOB_ID.match(job_id):
        raise ValueError("not a page token this API issued")
    return value


def _digits(value: object) -> object:
    """Plain decimal digits: pydantic would also take " 5", "+5", "5.0" and "1_0"."""
    if not (isinstance(value, str) and value.isascii() and value.isdigit()):
        raise ValueError("must be an integer")
    return value


_JSON_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")


def _decimal(value: object) -> object:
    """A number as JSON writes one ("5", "0.25", "1.5e-05"): not " 5", "inf", "nan" or "5_0"."""
    if not (isinstance(value, str) and _JSON_NUMBER.fullmatch(value)):
        raise ValueError("must be a number such as 5 or 0.25")
    return value


def _flag(value: object) -> object:
    if value not in ("true", "false"):
        raise ValueError("must be true or false")
    return value == "true"


def _one_of(names: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in names:
            raise ValueError(f"must be one of {', '.join(names)}")
        return value

    return check


StateName = Annotated[
    JobState,
    BeforeValidator(_state_name),
    WithJsonSchema({"type": "string", "enum": list(STATE_NAMES)}),
]
PageToken = Annotated[
    str, StringConstraints(pattern=f"^{PAGE_TOKEN_PATTERN}$"), AfterValidator(_issued_token)
]
# BeforeValidator last: the digits are checked before pydantic parses an int.
PageSize = Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE), BeforeValidator(_digits)]
TranscriptFormat = Annotated[
    str,
    AfterValidator(_one_of(TRANSCRIPT_FORMATS)),
    WithJsonSchema({"type": "string", "enum": list(TRANSCRIPT_FORMATS)}),
]
NotesFormat = Annotated[
    str,
    AfterValidator(_one_of(NOTES_FORMATS)),
    WithJsonSchema({"type": "string", "enum": list(NOTES_FORMATS)}),
]


class NoQuery(BaseModel):
    """A route that takes no query parameters: any is refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ListJobsQuery(NoQuery):
    state: StateName | None = Field(default=None, description="Only jobs in this state")
    limit: PageSize = Field(default=20, description="Page size")
    page_token: PageToken | None = Field(
        default=None,
        description="next_page_token of the previous page (valid only for the same caller)",
    )


def _subtitle_option(name: str) -> Any:  # what Field returns
    """A subtitle option as a query parameter: absent unless given; bounds in SubtitleOptions."""
    field = SubtitleOptions.model_fields[name]
    default = str(getattr(DEFAULT_OPTIONS, name)).lower()
    return Field(
        default=None,
        description=f"{field.description}; srt and vtt only, default {default}",
    )


class TranscriptQuery(NoQuery):
    format: TranscriptFormat = Field(default="json", description="Rendering")
    max_line_chars: Annotated[MaxLineChars, BeforeValidator(_digits)] | None = _subtitle_option(
        "max_line_chars"
    )
    max_lines: Annotated[MaxLines, BeforeValidator(_digits)] | None = _subtitle_option("max_lines")
    max_cue_s: Annotated[MaxCueSeconds, BeforeValidator(_decimal)] | None = _subtitle_option(
        "max_cue_s"
    )
    min_gap_s: Annotated[MinGapSeconds, BeforeValidator(_decimal)] | None = _subtitle_option(
        "min_gap_s"
    )
    highlight_words: (
        Annotated[HighlightWords, BeforeValidator(_flag), WithJsonSchema({"type": "boolean"})]
        | None
    ) = _subtitle_option("highlight_words")

    def subtitles(self) -> SubtitleOptions | None:
        """The subtitle options given (the others at their defaults); None when none is."""
        given = {name: getattr(self, name) for name in SubtitleOptions.model_fields}
        given = {name: value for name, value in given.items() if name in self.model_fields_set}
        return SubtitleOptions(**given) if given else None


class NotesQuery(NoQuery):
    format: NotesFormat = Field(default="json", description="Rendering")


# --- responses ---------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class OptionsView(BaseModel):
    priority: Priority
    language: str | None
    model: str | None
    task: WhisperTask
    vocabulary: list[str]
    notes_template: NotesTemplate
    speakers: str = Field(
        description=f"As the job runs it (its default filled in): {SPEAKERS_DESCRIPTION}"
    )
    webhook_url: str | None
    notes_instructions: str | None = Field(description="Given to the notes prompt; null: none")


class SourceView(BaseModel):
    uri: str
    bytes: int | None
    duration_s: float | None
    content_type: str | None


class Links(BaseModel):
    self: str
    transcript: str
    notes: str
    audio: str


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
    transcription: TranscriptionSummary | None = Field(
        description="Once transcribed: the model, the language heard (or asked for) with its "
        "probability, and the transcript's quality (low-confidence words, windows decoded "
        "again, segments the hallucination guard dropped), and each speaker's talk time"
    )
    speaker_names: dict[str, str] = Field(
        description="Names given to speaker labels (PUT /v1/jobs/{job_id}/speakers)"
    )
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
            options=OptionsView(
                **{**job.options.model_dump(), "speakers": str(job.options.speaker_spec)}
            ),
            source=SourceView(
                uri=job.source.uri,
                bytes=job.source.bytes,
                duration_s=job.source.duration_s,
                content_type=job.source.content_type,
            ),
            error=ErrorDetail(**job.error.model_dump()) if job.error else None,
            outputs=sorted(job.outputs),
            transcription=(
                job.transcription.with_names(job.speaker_names) if job.transcription else None
            ),
            speaker_names=job.speaker_names,
            links=Links(
                self=base,
                transcript=f"{base}/transcript",
                notes=f"{base}/notes",
                audio=f"{base}/audio",
            ),
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


class SpeakersView(BaseModel):
    job_id: str
    speakers: list[SpeakerTalk] = Field(
        description="Each speaker the transcript labels, most talk first: its label, the name "
        "given (null: none), seconds spoken, share of all speech, and turns"
    )
    speaker_names: dict[str, str] = Field(description="The job's names, label -> name")


class UploadTicket(BaseModel):
    upload_url: str = Field(description="V4 signed URL; PUT the file's bytes to it")
    method: Literal["PUT"] = "PUT"
    headers: dict[str, str] = Field(description="Headers the PUT must carry, exactly")
    audio_url: str = Field(description="gs:// URI to give POST /v1/jobs once uploaded")
    expires_at: datetime


class AudioLink(BaseModel):
    url: str = Field(
        description="Where to play or download the job's audio: a V4 signed GET URL of the "
        "stored file, or the https audio_url the job was submitted with"
    )
    signed: bool = Field(description="True for a signed URL, which stops working at expires_at")
    expires_at: datetime | None
    content_type: str | None


class ModelView(BaseModel):
    name: str
    languages: Literal["en", "multilingual"]
    translates: bool
    parameters_m: int = Field(description="Parameters, millions")
    relative_speed: float = Field(description="Against large-v3 = 1 on one GPU (published)")
    gpu_memory_gb: float = Field(description="float16, beam 5, approximate (published)")
    installed: bool = Field(description="This deployment carries it: jobs may ask for it")
    default_for: list[Tier] = Field(description="The tiers whose jobs get it when they name none")


class ModelList(BaseModel):
    models: list[ModelView]

    @classmethod
    def of(cls, transcription: Transcription) -> ModelList:
        return cls(
            models=[
                ModelView(
                    name=info.name,
                    languages="en" if info.english_only else "multilingual",
                    translates=info.translates,
                    parameters_m=info.parameters_m,
                    relative_speed=info.relative_speed,
                    gpu_memory_gb=info.gpu_memory_gb,
                    installed=info.name in transcription.models,
                    default_for=[t for t in Tier if transcription.default_models[t] == info.name],
                )
                for info in CATALOG.values()
            ]
        )


class Health(BaseModel):
    status: Literal["ok"] = "ok"
