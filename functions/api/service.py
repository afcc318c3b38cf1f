"""What the API does, apart from HTTP: each function takes the caller and a validated request,
calls ``common`` and returns domain objects or raises domain errors (never HTTP codes).

Every caller sees only jobs whose ``owner`` is their token's subject; another subject's job is
reported exactly like a missing one, so job ids cannot be probed.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol
from urllib.parse import urlsplit

import requests
from pydantic import ValidationError

from common.domain.blobs import BlobRef
from common.domain.errors import (
    AudionotesError,
    BlobForbidden,
    BlobNotFound,
    Busy,
    InvalidInput,
    InvalidTransition,
    JobNotFound,
    PublishFailed,
)
from common.domain.jobs import (
    Job,
    JobError,
    JobOptions,
    JobSource,
    JobState,
    api_job_id,
    utcnow,
    with_speaker_names,
)
from common.domain.notes import NOTES_JSON, NOTES_MD, NotesDocument, render_markdown
from common.domain.owners import subject_folder
from common.domain.ports import Page
from common.domain.speakers import SpeakerTalk, check_names, renamed
from common.domain.subtitles import DEFAULT_OPTIONS, SUBTITLE_FORMATS, SubtitleOptions, render
from common.domain.transcript_files import TRANSCRIPT_JSON, write_outputs
from common.domain.transcription_plan import resolve_model
from common.domain.transcripts import (
    MEDIA_TYPES,
    NOTES_FORMATS,
    TRANSCRIPT_FORMATS,
    Transcript,
    result_uri,
)
from common.edge.auth import Principal, Verifier
from common.edge.sniff import HEAD_BYTES, sniff
from common.edge.ssrf import UrlNotAllowed, UrlPolicy, check_with_policy, fetch
from common.gcp.rate_limit import RateLimiter
from common.notes import cache as notes_cache
from common.obs.logs import bind, current_traceparent, get_logger
from functions.api.routes import IDEMPOTENCY_KEY_PATTERN
from functions.api.schemas import FILENAME_PATTERN
from functions.bootstrap import Services
from functions.uploads import ensure_published

log = get_logger(__name__)

_IDEMPOTENCY_KEY = re.compile(f"^{IDEMPOTENCY_KEY_PATTERN}$")
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

TRANSCRIPT_READY = (JobState.TRANSCRIBED, JobState.SUMMARIZING, JobState.COMPLETED)
NOTES_READY = (JobState.COMPLETED,)


class Forbidden(AudionotesError):
    code = "forbidden"


class TooLarge(InvalidInput):
    code = "too_large"


class UnsupportedMedia(InvalidInput):
    code = "unsupported_media_type"


class ResultNotReady(AudionotesError):
    code = "not_ready"


class NoSpeakers(AudionotesError):
    """The job's transcript has no speaker labels (it ran with speakers "none")."""

    code = "no_speakers"


class Canceller(Protocol):
    def cancel(self, execution: str) -> None: ...


@dataclass(frozen=True)
class ApiServices:
    core: Services
    verifier: Verifier
    limiter: RateLimiter
    policy: UrlPolicy
    canceller: Canceller


# --- submit ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    audio_url: str
    options: JobOptions


def submit_job(
    api: ApiServices, caller: Principal, submission: Submission, idempotency_key: str | None
) -> tuple[Job, bool]:
    """Create (or, for a known Idempotency-Key, find) the job; returns ``(job, replayed)``.

    Everything is validated before anything is written; a job exists only once its source
    and options passed, and it is published once (re-published only if the request that
    created it died before publishing).
    """
    if idempotency_key is not None and not _IDEMPOTENCY_KEY.match(idempotency_key):
        raise InvalidInput(
            "Idempotency-Key must be 1-255 visible ASCII characters", code="bad_idempotency_key"
        )
    job_id = api_job_id(caller.subject, idempotency_key)
    with bind(job_id=job_id):
        if idempotency_key is not None:
            earlier = _find(api, job_id)
            if earlier is not None:
                _same_request(earlier, submission)
                return _ensure_published(api, earlier, created=False), True

        options = submission.options
        resolve_model(options, api.core.settings)
        if options.webhook_url:
            check_with_policy(options.webhook_url, api.policy)
        source = resolve_source(api, caller, submission.audio_url)
        job = Job.new(
            job_id=job_id,
            owner=caller.subject,
            source=source,
            options=submission.options,
            retention_days=api.core.settings.limits.retention_days,
            traceparent=current_traceparent(),
        )
        job, created = api.core.jobs.create(job)
        if not created:  # a concurrent request with the same key won the create
            _same_request(job, submission)
        return _ensure_published(api, job, created=created), not created


def _same_request(job: Job, submission: Submission) -> None:
    if job.source.uri != submission.audio_url or job.options != submission.options:
        raise InvalidInput(
            "this Idempotency-Key was used for a different request (audio_url or options "
            "differ); use a new key for a new job",
            code="idempotency_key_reused",
        )


def _ensure_published(api: ApiServices, job: Job, *, created: bool) -> Job:
    try:
        if ensure_published(api.core, job, created=created):
            return api.core.jobs.get(job.job_id)
    except Busy:
        pass  # the request that created it is publishing it right now
    except PublishFailed:
        if created:
            _withdraw(api, job)
        raise
    return job


def _withdraw(api: ApiServices, job: Job) -> None:
    """The caller is told 503 and will retry: leave no job behind that the sweep would run
    (and bill) a second time. Nothing else knows the job yet: it was never published."""
    try:
        api.core.jobs.delete(job.job_id)
        log.warning("publish failed; job %s withdrawn", job.job_id, extra={"code": "withdrawn"})
    except Exception:  # the store is out too: the sweep will publish it later
        log.exception("publish failed and job %s could not be withdrawn", job.job_id)


def resolve_source(api: ApiServices, caller: Principal, audio_url: str) -> JobSource:
    scheme = urlsplit(audio_url).scheme.lower()
    if scheme == "gs":
        return _gcs_source(api, caller, audio_url)
    if scheme in ("https", "http"):
        return _https_source(api, audio_url)
    allowed = "gs:// or https://" + (" (or http://)" if api.policy.allow_http else "")
    raise UrlNotAllowed(
        f"audio_url scheme {scheme or '(none)'!r} is not allowed; use {allowed}",
        code="url_scheme_not_allowed",
    )


def upload_folder(api: ApiServices, subject: str) -> str:
    return f"{api.core.settings.auth.api_upload_prefix}{subject_folder(subject)}/"


def _gcs_source(api: ApiServices, caller: Principal, uri: str) -> JobSource:
    s = api.core.settings
    ref = BlobRef.parse(uri)
    if ref.bucket == s.buckets.inbox:
        if not ref.name.startswith(upload_folder(api, caller.subject)):
            raise Forbidden(
                f"{uri} is not one of your uploads (POST /v1/uploads gives you a place in "
                "the inbox)",
                code="source_forbidden",
            )
    elif ref.bucket not in s.auth.source_buckets:
        raise Forbidden(
            f"bucket {ref.bucket} is not open to API callers; upload through POST /v1/uploads",
            code="source_forbidden",
        )
    try:
        info = api.core.blobs.stat(uri)
    except BlobForbidden as exc:
        raise Forbidden(f"the service cannot read {uri}", code="source_forbidden") from exc
    if info is None:
        raise InvalidInput(f"{uri} does not exist", code="source_not_found")
    try:
        _check_size(api, info.size, uri)
        try:
            head = api.core.blobs.read_range(uri, 0, HEAD_BYTES, generation=info.generation)
        except BlobNotFound as exc:
            raise InvalidInput(f"{uri} does not exist", code="source_not_found") from exc
        _check_audio(head, uri)
    except InvalidInput:
        if ref.bucket == s.buckets.inbox:
            # A refused upload of the caller's own is of no further use: do not keep it.
            api.core.blobs.delete(uri)
        raise
    return JobSource(
        uri=uri, bytes=info.size, content_type=info.content_type, generation=info.generation
    )


def _https_source(api: ApiServices, url: str) -> JobSource:
    """Preflight through the guard: the first bytes (a ranged GET), the size, the content."""
    check_with_policy(url, api.policy)
    timeout = api.core.settings.limits.url_check_timeout_s
    try:
        response = fetch(
            url,
            api.policy,
            headers={"Range": f"bytes=0-{HEAD_BYTES - 1}", "Accept-Encoding": "identity"},
            timeout=(timeout, timeout),
            stream=True,
        )
    except requests.RequestException as exc:
        raise InvalidInput(
            f"audio_url could not be fetched: {type(exc).__name__}", code="source_unreachable"
        ) from None
    with response:
        if response.status_code not in (200, 206):
            raise InvalidInput(
                f"audio_url answered HTTP {response.status_code}", code="source_unreachable"
            )
        size = _total_size(response)
        head = b""
        for chunk in response.iter_content(16384):
            head += chunk
            if len(head) >= HEAD_BYTES:
                break
    if size is not None:
        _check_size(api, size, url)
    elif not head:
        _check_size(api, 0, url)
    _check_audio(head[:HEAD_BYTES], url)
    content_type = response.headers.get("Content-Type")
    return JobSource(uri=url, bytes=size, content_type=content_type)


def _total_size(response: requests.Response) -> int | None:
    if response.status_code == 206:
        total = response.headers.get("Content-Range", "").rpartition("/")[2]
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length", "")
    return int(length) if length.isdigit() else None


def _check_size(api: ApiServices, size: int, what: str) -> None:
    limit = api.core.settings.limits.max_upload_bytes
    if size == 0:
        raise InvalidInput(f"{what} is empty (0 bytes)", code="empty_audio")
    if size > limit:
        raise TooLarge(f"{what} is {size} bytes; the limit is {limit}", code="audio_too_large")


def _check_audio(head: bytes, what: str) -> None:
    sniffed = sniff(head)
    if not sniffed.is_audio:
        raise UnsupportedMedia(
            f"{what} is not audio: its content looks like {sniffed.description}",
            code="not_audio",
        )


# --- read --------------------------------------------------------------------------------------


def get_job(api: ApiServices, caller: Principal, job_id: str) -> Job:
    job = _find(api, job_id)
    if job is None or job.owner != caller.subject:
        raise JobNotFound(f"no job {job_id}")
    return job


def list_jobs(
    api: ApiServices,
    caller: Principal,
    *,
    state: JobState | None,
    limit: int,
    page_token: str | None,
) -> Page:
    return api.core.jobs.list(owner=caller.subject, state=state, limit=limit, page_token=page_token)


@dataclass(frozen=True)
class Result:
    data: bytes
    fmt: str


def read_result(
    api: ApiServices,
    caller: Principal,
    job_id: str,
    kind: str,
    fmt: str,
    subtitles: SubtitleOptions | None = None,
) -> Result:
    """The stored rendering; with ``subtitles`` (srt and vtt only), one made now from
    transcript.json with those options (nothing is transcribed again). A job with speakers is
    served with its own ``speaker_names``, whatever the stored files say."""
    formats = TRANSCRIPT_FORMATS if kind == "transcript" else NOTES_FORMATS
    if fmt not in formats:
        raise InvalidInput(
            f"format must be one of {', '.join(formats)}, not {fmt!r}", code="bad_format"
        )
    job = get_job(api, caller, job_id)
    # After the job is found: OpenAPI cannot say that these need format=srt or vtt, so a
    # request valid by the document is refused only for a job that exists.
    if subtitles is not None and (kind != "transcript" or fmt not in SUBTITLE_FORMATS):
        names = ", ".join(sorted(subtitles.model_fields_set))
        raise InvalidInput(
            f"{names}: only with format={' or '.join(SUBTITLE_FORMATS)}, not format={fmt}",
            code="inapplicable_parameter",
        )
    if subtitles is None and not _has_speakers(job):
        return Result(_stored(api, job, kind, f"{kind}.{fmt}"), fmt)
    # Rendered from the JSON with the job's names whenever that JSON carries others (a rename
    # whose rewrite died half-way, or notes made while it ran): the job holds the names.
    source = _stored(api, job, kind, f"{kind}.json")
    if kind == "transcript":
        transcript = Transcript.model_validate_json(source)
        if subtitles is None and transcript.speaker_names == job.speaker_names:
            return Result(
                source if fmt == "json" else _stored(api, job, kind, f"{kind}.{fmt}"), fmt
            )
        named = transcript.model_copy(update={"speaker_names": job.speaker_names})
        return Result(render(named, fmt, subtitles or DEFAULT_OPTIONS).encode(), fmt)
    doc = NotesDocument.model_validate_json(source)
    if doc.speaker_names == job.speaker_names:
        return Result(source if fmt == "json" else _stored(api, job, kind, f"{kind}.{fmt}"), fmt)
    return Result(_notes_bytes(doc.with_names(job.speaker_names), fmt), fmt)


def _has_speakers(job: Job) -> bool:
    return bool(job.speaker_names or (job.transcription and job.transcription.speakers))


def _stored(api: ApiServices, job: Job, kind: str, name: str) -> bytes:
    """A stored result: ``ResultNotReady`` while the job may still write it, ``JobNotFound``
    once it never will."""
    ready = TRANSCRIPT_READY if kind == "transcript" else NOTES_READY
    try:
        return api.core.blobs.read_bytes(result_uri(api.core.settings, job.job_id, name))
    except BlobNotFound:
        if not job.state.is_final and job.state not in ready:
            raise ResultNotReady(
                f"job {job.job_id} is {job.state.value}; its {kind} is not ready yet",
                code=f"{kind}_not_ready",
            ) from None
        raise JobNotFound(
            f"job {job.job_id} ({job.state.value}) has no {name}", code="result_not_found"
        ) from None


def _notes_bytes(doc: NotesDocument, fmt: str) -> bytes:
    # As functions/notes.py writes them.
    return (doc.model_dump_json(indent=2) if fmt == "json" else render_markdown(doc)).encode()


# --- speakers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Speakers:
    job: Job
    speakers: list[SpeakerTalk]


def name_speakers(
    api: ApiServices, caller: Principal, job_id: str, change: Mapping[str, str | None]
) -> Speakers:
    """Give names to the transcript's speaker labels (None or "" gives a label back).

    The job document is written first: it holds the names, and every read shows them from then
    on (``read_result``). Then the stored files are rewritten from their JSON, each JSON last:
    the transcript's renderings and transcript.json, then notes.md and notes.json if the notes
    exist. Nothing is transcribed or summarized again. A retry (PUT is idempotent) finds the
    names in place and writes the same files again, finishing a rewrite that died.
    """
    job = get_job(api, caller, job_id)
    if job.state not in TRANSCRIPT_READY:
        raise ResultNotReady(
            f"job {job_id} is {job.state.value}; speakers can be named once it is transcribed "
            f"({', '.join(s.value for s in TRANSCRIPT_READY)})",
            code="transcript_not_ready",
        )
    transcript = Transcript.model_validate_json(_stored(api, job, "transcript", TRANSCRIPT_JSON))
    if not transcript.turns:
        raise NoSpeakers(
            f"job {job_id} ran with speakers 'none': its transcript has no speaker labels to "
            "name (submit the audio again with speakers 'auto', a count or a range)",
            code="no_speakers",
        )
    labels = sorted({t.speaker for t in transcript.turns}, key=lambda s: (len(s), s))
    clean = check_names(change, labels)
    renamed(job.speaker_names, clean)  # refused before anything is written
    with bind(job_id=job_id):
        job = api.core.jobs.update(job_id, lambda j: with_speaker_names(j, clean, utcnow()))
        _rewrite(api, job, transcript)
        log.info("speakers named: %s", ", ".join(sorted(clean)), extra={"event": "speakers_named"})
    named = transcript.model_copy(update={"speaker_names": job.speaker_names})
    return Speakers(job=job, speakers=named.speakers)


def _rewrite(api: ApiServices, job: Job, transcript: Transcript) -> None:
    """The stored files with the job's names, from their stored JSON."""
    s, blobs = api.core.settings, api.core.blobs
    write_outputs(transcript.model_copy(update={"speaker_names": job.speaker_names}), s, blobs)
    notes_uri = result_uri(s, job.job_id, NOTES_JSON)
    try:
        doc = NotesDocument.model_validate_json(blobs.read_bytes(notes_uri))
    except BlobNotFound:
        return  # not made yet: served with the job's names once they are (read_result)
    doc = doc.with_names(job.speaker_names)
    md_uri = result_uri(s, job.job_id, NOTES_MD)
    blobs.write_bytes(md_uri, _notes_bytes(doc, "md"), content_type=MEDIA_TYPES["md"])
    blobs.write_bytes(notes_uri, _notes_bytes(doc, "json"), content_type=MEDIA_TYPES["json"])


# --- delete ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deletion:
    job: Job
    cancelled: bool
    deleted_objects: int


def delete_job(api: ApiServices, caller: Principal, job_id: str) -> Deletion:
    """Cancel a running job (and its Cloud Run execution), delete its audio and results.

    The job document stays, CANCELLED (or in the final state it had), with no outputs, as a
    tombstone that stops late workers and expires with the TTL policy. Idempotent.
    """
    job = get_job(api, caller, job_id)
    cancelled = False
    with bind(job_id=job_id):
        if not job.state.is_final:
            try:
                moved = api.core.jobs.transition(
                    job_id,
                    JobState.CANCELLED,
                    error=JobError(code="cancelled", message="cancelled by DELETE /v1/jobs"),
                )
                job, cancelled = moved.job, moved.changed
            except InvalidTransition:
                job = api.core.jobs.get(job_id)  # it finished meanwhile
        # A lane execution (coordination.batch_lane) serves other jobs too: it sees the job
        # CANCELLED and moves on, so only a job's own execution is stopped.
        if job.state == JobState.CANCELLED and job.execution and not job.coordination.batch_lane:
            api.canceller.cancel(job.execution)
        s = api.core.settings
        deleted = _forget_notes(api, job)
        deleted += api.core.blobs.delete_prefix(
            f"gs://{s.buckets.results}/{s.buckets.results_prefix}{job_id}/"
        )
        if job.source.uri.startswith(f"gs://{s.buckets.inbox}/"):
            deleted += int(api.core.blobs.delete(job.source.uri))  # only audio we hold
        if job.source.sha256:
            # The content cache holds this audio's transcript too (for every model and
            # language): deleting the job's data means deleting that copy as well.
            deleted += api.core.blobs.delete_prefix(
                f"gs://{s.buckets.results}/{s.buckets.cache_prefix}{job.source.sha256}/"
            )
        job = api.core.jobs.update(
            job_id,
            lambda j: (
                j.model_copy(update={"outputs": {}, "updated_at": utcnow()}) if j.outputs else None
            ),
        )
        log.info("deleted job %s (%d objects)", job_id, deleted, extra={"event": "deleted"})
    return Deletion(job=job, cancelled=cancelled, deleted_objects=deleted)


def _forget_notes(api: ApiServices, job: Job) -> int:
    """The owner's notes cache holds this job's notes too (common/notes/cache.py)."""
    s = api.core.settings
    try:
        data = api.core.blobs.read_bytes(result_uri(s, job.job_id, "transcript.json"))
        transcript = Transcript.model_validate_json(data)
    except (BlobNotFound, ValidationError):
        return 0
    keys = [
        notes_cache.cache_key(transcript, job.options, s, version=v)
        for v in notes_cache.all_versions
    ]
    return sum(int(api.core.blobs.delete(notes_cache.cache_uri(s, job.owner, k))) for k in keys)


# --- uploads -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ticket:
    upload_url: str
    headers: dict[str, str]
    audio_url: str
    expires_in: timedelta


def create_upload(
    api: ApiServices, caller: Principal, *, filename: str, content_type: str, size: int | None
) -> Ticket:
    if size is not None:
        _check_size(api, size, filename)
    safe = _FILENAME_UNSAFE.sub("_", filename).strip("._")[:120]
    if not re.match(FILENAME_PATTERN, filename):
        raise InvalidInput(
            f"filename {filename!r} must be one name (no '/' or '\\', no control characters) "
            "with at least one letter or digit",
            code="bad_filename",
        )
    s = api.core.settings
    uri = f"gs://{s.buckets.inbox}/{upload_folder(api, caller.subject)}{uuid.uuid4().hex}/{safe}"
    expires = timedelta(seconds=s.limits.upload_url_ttl_s)
    url = api.core.blobs.signed_url(uri, method="PUT", expires=expires, content_type=content_type)
    return Ticket(url, {"Content-Type": content_type}, uri, expires)


@dataclass(frozen=True)
class Audio:
    url: str
    signed: bool
    expires_in: timedelta | None
    content_type: str | None


def audio_link(api: ApiServices, caller: Principal, job_id: str) -> Audio:
    """Where the caller can play the job's audio: a short-lived signed GET URL of the stored
    object (the page's player), or the https URL the job was submitted with (the caller's own;
    nothing of ours is fetched or revealed)."""
    job = get_job(api, caller, job_id)
    uri = job.source.uri
    if not uri.startswith("gs://"):
        return Audio(uri, False, None, job.source.content_type)
    if api.core.blobs.stat(uri) is None:
        raise BlobNotFound(
            f"the audio of job {job_id} is no longer stored (deleted with the job, or after "
            f"{api.core.settings.limits.retention_days} days)",
            code="audio_not_found",
        )
    ttl = timedelta(seconds=api.core.settings.limits.audio_url_ttl_s)
    url = api.core.blobs.signed_url(uri, method="GET", expires=ttl)
    return Audio(url, True, ttl, job.source.content_type)


def _find(api: ApiServices, job_id: str) -> Job | None:
    try:
        return api.core.jobs.get(job_id)
    except JobNotFound:
        return None
