"""``notes``: a TranscriptReady message becomes notes.json + notes.md and a COMPLETED job.

Idempotent under at-least-once delivery:
- the job moves TRANSCRIBED -> SUMMARIZING -> COMPLETED, each a no-op when already there;
- ``notes.json`` is created only if absent: the first writer wins,
  a later or concurrent delivery reads the winner's notes instead of making (and paying for)
  new ones, and ``notes.md`` is a pure rendering of it;
- completion adds the notes' usage and cost to the job once, in one conditional write;
- the webhook's receipt (``webhook.json``) is written once, and a COMPLETED job without one
  gets its webhook on redelivery.

With speakers, the transcript goes to the model as turn lines (labels, never names); notes.json
adds talk time per speaker and the job's ``speaker_names`` read just before it is written, and
notes.md shows those names.

Outcomes: bad input (no job, no transcript, an unreadable or empty one) marks the job FAILED
and returns; anything transient (Firestore, GCS, a webhook receiver that is down) raises.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from pydantic import ValidationError

from common.domain.errors import (
    AudionotesError,
    BlobExists,
    BlobNotFound,
    InvalidInput,
    InvalidTransition,
    JobNotFound,
)
from common.domain.jobs import (
    Job,
    JobError,
    JobState,
    completed,
    held_by_notes_batch,
    notes_claimed_for,
    notes_released,
    one_more_provider_wait,
    utcnow,
)
from common.domain.lease import holds
from common.domain.messages import TranscriptReady
from common.domain.notes import (
    NOTES_JSON,
    NOTES_MD,
    Notes,
    NotesDocument,
    Provenance,
    Usage,
    render_markdown,
)
from common.domain.retry import Backoff
from common.domain.speakers import talk_time
from common.domain.transcripts import Transcript, result_uri
from common.edge.ssrf import UrlPolicy
from common.edge.webhooks import WebhookReceipt, WebhookSender
from common.gcp import clients
from common.gcp.notes_engine import build_engine
from common.notes import cache as notes_cache
from common.notes.chain import NotesEngine
from common.notes.chunking import estimate_tokens
from common.notes.errors import ProvidersDown
from common.notes.turns import join_pieces, notes_pieces
from common.obs.logs import bind, get_logger
from functions.bootstrap import Services, services

log = get_logger(__name__)

WEBHOOK_RECEIPT = "webhook.json"
WEBHOOK_EVENT = "job.completed"


class NotesOutcome(StrEnum):
    COMPLETED = "completed"
    ALREADY_COMPLETED = "already_completed"
    FAILED = "failed"
    IGNORED = "ignored"
    BATCHED = "batched"  # another job's delivery is making these notes with its own


class TranscriptNotReady(AudionotesError):
    """The job has not reached TRANSCRIBED: transient, the message is redelivered."""

    code = "not_ready"


@dataclass(frozen=True)
class NotesServices:
    core: Services
    engine: NotesEngine
    webhooks: WebhookSender | None


def build_notes_services(base: Services) -> NotesServices:
    s = base.settings
    sender = None
    if s.webhooks.secret is not None:
        sender = WebhookSender(
            policy=UrlPolicy.from_settings(s),
            secret=s.webhooks.secret.get_secret_value().encode(),
            attempts=s.webhooks.attempts,
            timeout_s=s.webhooks.timeout_s,
            backoff=Backoff(base_s=s.webhooks.backoff_s, max_s=30.0),
        )
    engine = build_engine(s, lambda: clients.firestore_client(s.project))
    return NotesServices(core=base, engine=engine, webhooks=sender)


@lru_cache(maxsize=1)
def notes_services() -> NotesServices:
    return build_notes_services(services())


def handle_transcript_ready(
    msg: TranscriptReady, svc: NotesServices, *, delivery_attempt: int | None = None
) -> NotesOutcome:
    """``delivery_attempt``: Pub/Sub's count for this message (1 first), when it gives one."""
    jobs = svc.core.jobs
    with bind(job_id=msg.job_id):
        try:
            job = jobs.get(msg.job_id)
        except JobNotFound:
            log.warning("no job %s; message dropped", msg.job_id, extra={"code": "job_not_found"})
            return NotesOutcome.IGNORED
        if job.state is JobState.COMPLETED:
            _webhook(job, svc)
            log.info("duplicate delivery; job is COMPLETED", extra={"event": "duplicate"})
            return NotesOutcome.ALREADY_COMPLETED
        if job.state in (JobState.FAILED, JobState.CANCELLED):
            log.info("job is %s; nothing to do", job.state, extra={"event": "ignored"})
            return NotesOutcome.IGNORED
        if job.state not in (JobState.TRANSCRIBED, JobState.SUMMARIZING):
            raise TranscriptNotReady(f"job {job.job_id} is {job.state}, not TRANSCRIBED yet")

        notes_uri = result_uri(svc.core.settings, job.job_id, NOTES_JSON)
        if held_by_notes_batch(job, utcnow()) and svc.core.blobs.stat(notes_uri) is None:
            # Acknowledged, not retried: nacking until the batch is done could dead-letter the
            # message. The batch completes the job (and re-announces it for its webhook); if
            # the batch's delivery died, the sweep re-announces the job after the lease.
            batch = job.coordination.notes_batch
            log.info(
                "notes being made with %s's", batch and batch.holder, extra={"event": "batched"}
            )
            return NotesOutcome.BATCHED
        wait = _may_wait(job, svc, delivery_attempt)
        jobs.transition(job.job_id, JobState.SUMMARIZING)
        try:
            doc = _existing_notes(job, svc) or _make_notes(job, svc, wait_for_provider=wait)
        except ProvidersDown as exc:
            waited = jobs.update(job.job_id, one_more_provider_wait)
            waits = waited.coordination.provider_waits
            log.warning("%s (wait %d)", exc.message, waits, extra={"code": exc.code})
            raise  # the job stays SUMMARIZING; the redelivery tries the providers again
        except (InvalidInput, BlobNotFound) as exc:
            jobs.transition(
                job.job_id, JobState.FAILED, error=JobError(code=exc.code, message=exc.message)
            )
            log.error("notes failed: %s", exc.message, extra={"code": exc.code})
            return NotesOutcome.FAILED

        done = _finish(job.job_id, doc, svc)
        if done is None:
            return NotesOutcome.IGNORED
        _webhook(done, svc)
        return NotesOutcome.COMPLETED


def _finish(job_id: str, doc: NotesDocument, svc: NotesServices) -> Job | None:
    """notes.md, and the job COMPLETED with the notes' usage (None: cancelled meanwhile)."""
    s = svc.core.settings
    md_uri = result_uri(s, job_id, NOTES_MD)
    svc.core.blobs.write_bytes(
        md_uri, render_markdown(doc).encode(), content_type="text/markdown; charset=utf-8"
    )
    outputs = {NOTES_JSON: result_uri(s, job_id, NOTES_JSON), NOTES_MD: md_uri}
    try:
        done = svc.core.jobs.update(job_id, lambda j: _complete(j, outputs, doc.provenance))
    except InvalidTransition as exc:  # cancelled meanwhile: the notes stay, the job too
        log.info("not completed: %s", exc.message, extra={"code": exc.code})
        return None
    log.info(
        "notes by %s (%s): %d call(s), $%.6f",
        doc.provenance.provider,
        doc.provenance.model,
        doc.provenance.calls,
        doc.provenance.cost_usd,
        extra={"event": "notes_completed", "state": done.state.value, "job_id": job_id},
    )
    return done


def _existing_notes(job: Job, svc: NotesServices) -> NotesDocument | None:
    uri = result_uri(svc.core.settings, job.job_id, NOTES_JSON)
    try:
        data = svc.core.blobs.read_bytes(uri)
    except BlobNotFound:
        return None
    try:
        return NotesDocument.model_validate_json(data)
    except ValidationError as exc:  # no retry can fix it: fail the job, saying what is wrong
        raise InvalidInput(
            f"{uri} is not a notes document: {exc.error_count()} error(s)", code="bad_notes"
        ) from exc


def _may_wait(job: Job, svc: NotesServices, delivery_attempt: int | None) -> bool:
    """Whether a job may wait for a model provider that is out, rather than take extractive
    notes: for ``llm.provider_wait_s`` after it began summarizing, and never so often that
    Pub/Sub would dead-letter its message. The job counts its own waits, since Pub/Sub's
    ``deliveryAttempt`` is not always there (the local emulator never sends it)."""
    s = svc.core.settings
    last_wait = s.delivery.max_delivery_attempts - 2  # the delivery after it must not fail
    if s.llm.provider_wait_s <= 0 or job.coordination.provider_waits >= last_wait:
        return False
    if delivery_attempt is not None and delivery_attempt > last_wait:
        return False
    began = job.state_times.get(JobState.SUMMARIZING) or utcnow()
    return (utcnow() - began).total_seconds() < s.llm.provider_wait_s


def _make_notes(job: Job, svc: NotesServices, *, wait_for_provider: bool = False) -> NotesDocument:
    transcript, pieces = _load_transcript(job, svc)
    cached = _cached_notes(job, pieces, svc)
    if cached is not None:
        log.info("notes from the owner's cache: no model call", extra={"event": "notes_cache_hit"})
        return _write_notes(job, transcript, cached.notes, cached.provenance, svc)
    template = job.options.notes_template
    instructions = job.options.notes_instructions
    text = join_pieces(pieces)
    partners = _claim_partners(job, svc) if _batchable(text, svc) else []
    if partners:
        try:
            results = svc.engine.generate_batch(
                [(job.job_id, text), *((p.job_id, t) for p, _, t in partners)],
                template,
                instructions=instructions,
                wait_for_provider=wait_for_provider,
            )
        except Exception:
            _release(partners, job, svc)
            raise
        for partner, partner_transcript, _ in partners:
            notes, provenance = results[partner.job_id]
            doc = _write_notes(partner, partner_transcript, notes, provenance, svc)
            _remember(partner, notes_pieces(partner_transcript), doc, svc)
            done = _finish(partner.job_id, doc, svc)
            if done is not None and done.options.webhook_url:
                # Its webhook goes through the usual path (COMPLETED, retried by redelivery).
                trace = {"traceparent": done.traceparent} if done.traceparent else {}
                svc.core.publisher.publish(
                    svc.core.settings.topics.transcripts_ready,
                    TranscriptReady(job_id=done.job_id),
                    **trace,
                )
        log.info(
            "notes of %d transcripts made together", len(partners) + 1, extra={"event": "batch"}
        )
        notes, provenance = results[job.job_id]
    else:
        notes, provenance = svc.engine.generate(
            job.job_id,
            pieces,
            template,
            instructions=instructions,
            wait_for_provider=wait_for_provider,
        )
    doc = _write_notes(job, transcript, notes, provenance, svc)
    _remember(job, pieces, doc, svc)
    return doc


def _cached_notes(job: Job, pieces: list[str], svc: NotesServices) -> NotesDocument | None:
    s = svc.core.settings
    uri = notes_cache.cache_uri(s, job.owner, notes_cache.cache_key(pieces, job.options, s))
    try:
        cached = NotesDocument.model_validate_json(svc.core.blobs.read_bytes(uri))
    except BlobNotFound:
        return None
    except ValidationError:  # an entry from an older layout: make the notes anew
        return None
    reused = cached.provenance.model_copy(
        update={"from_cache": True, "calls": 0, "usage": Usage(), "cost_usd": 0.0, "attempts": []}
    )
    return cached.model_copy(update={"provenance": reused})


def _remember(job: Job, pieces: list[str], doc: NotesDocument, svc: NotesServices) -> None:
    """Notes a model made (not a fallback's) are kept for the owner's identical content."""
    prov = doc.provenance
    if prov.from_cache or prov.fallback_reason is not None or prov.provider == "extractive":
        return
    s = svc.core.settings
    uri = notes_cache.cache_uri(s, job.owner, notes_cache.cache_key(pieces, job.options, s))
    svc.core.blobs.write_bytes(uri, doc.model_dump_json().encode(), content_type="application/json")


def _load_transcript(job: Job, svc: NotesServices) -> tuple[Transcript, list[str]]:
    uri = result_uri(svc.core.settings, job.job_id, "transcript.json")
    try:
        transcript = Transcript.model_validate_json(svc.core.blobs.read_bytes(uri))
    except BlobNotFound as exc:
        raise InvalidInput(f"{uri} does not exist", code="transcript_missing") from exc
    except ValidationError as exc:
        raise InvalidInput(
            f"{uri} is not a transcript: {exc.error_count()} error(s), first: "
            f"{exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}",
            code="bad_transcript",
        ) from exc
    pieces = notes_pieces(transcript)  # turn lines when it has speakers
    if not pieces:
        raise InvalidInput(
            f"{uri} has no speech ({len(transcript.segments)} segments, no text)",
            code="empty_transcript",
        )
    return transcript, pieces


def _write_notes(
    job: Job, transcript: Transcript, notes: Notes, provenance: Provenance, svc: NotesServices
) -> NotesDocument:
    """notes.json, first writer wins: the document that is the job's notes from now on."""
    # The names as they are now, not as they were when the delivery began: a rename made
    # while the model was thinking still shows.
    names = _speaker_names(job, svc)
    doc = NotesDocument(
        job_id=job.job_id,
        template=job.options.notes_template,
        language=transcript.language,
        created_at=utcnow(),
        notes=notes,
        provenance=provenance,
        speakers=talk_time(transcript.turns, names),
        speaker_names=names,
    )
    json_uri = result_uri(svc.core.settings, job.job_id, NOTES_JSON)
    try:
        svc.core.blobs.create(
            json_uri, doc.model_dump_json(indent=2).encode(), content_type="application/json"
        )
    except BlobExists:
        # A concurrent delivery wrote first: its notes are the job's notes.
        existing = _existing_notes(job, svc)
        assert existing is not None
        log.info("notes.json already written by another delivery", extra={"event": "lost_race"})
        return existing
    return doc


def _speaker_names(job: Job, svc: NotesServices) -> dict[str, str]:
    try:
        return dict(svc.core.jobs.get(job.job_id).speaker_names)
    except JobNotFound:  # deleted meanwhile: the names it had are the last known
        return dict(job.speaker_names)


# Several short transcripts in one request -----------------------------------------------
# The first delivery to find other TRANSCRIBED jobs of the same owner, template and notes
# instructions with short transcripts claims them (each TRANSCRIBED -> SUMMARIZING under a
# ``notes_batch`` lease, a conditional write), makes all their notes in one request and
# completes them. Their own deliveries, while the lease is fresh, leave them to it. Only one
# owner's transcripts share a request: a model that mixed items up must not leak one
# customer's words into another's notes.


def _batchable(text: str, svc: NotesServices) -> bool:
    llm = svc.core.settings.llm
    return llm.batch_max_items > 1 and estimate_tokens(text) <= llm.batch_item_max_tokens


def _claim_partners(job: Job, svc: NotesServices) -> list[tuple[Job, Transcript, str]]:
    llm = svc.core.settings.llm
    waiting = svc.core.jobs.list(
        owner=job.owner, state=JobState.TRANSCRIBED, limit=min(100, 4 * llm.batch_max_items)
    ).jobs
    partners: list[tuple[Job, Transcript, str]] = []
    for other in waiting:
        if len(partners) >= llm.batch_max_items - 1:
            break
        if other.job_id == job.job_id or not _same_notes_request(other, job):
            continue
        try:
            transcript, pieces = _load_transcript(other, svc)
        except (InvalidInput, BlobNotFound):
            continue  # its own delivery fails it, with the reason
        text = join_pieces(pieces)
        if not _batchable(text, svc):
            continue
        try:
            claimed = svc.core.jobs.update(
                other.job_id,
                lambda j: notes_claimed_for(j, job.job_id, utcnow(), llm.batch_claim_lease_s),
            )
        except JobNotFound:
            continue
        mine = holds(claimed.coordination.notes_batch, job.job_id)
        if mine and claimed.state is JobState.SUMMARIZING:
            partners.append((claimed, transcript, text))
    return partners


def _same_notes_request(other: Job, job: Job) -> bool:
    """Whether ``other``'s notes may be asked for in ``job``'s request: one system prompt
    serves them all, so the template and the instructions must be the same."""
    return (other.options.notes_template, other.options.notes_instructions) == (
        job.options.notes_template,
        job.options.notes_instructions,
    )


def _release(partners: list[tuple[Job, Transcript, str]], job: Job, svc: NotesServices) -> None:
    """The batch failed: each partner's own delivery makes its notes."""
    for partner, _, _ in partners:
        with contextlib.suppress(JobNotFound):
            svc.core.jobs.update(partner.job_id, lambda j: notes_released(j, job.job_id))


def _complete(job: Job, outputs: dict[str, str], provenance: Provenance) -> Job | None:
    usage = {
        "llm_prompt_tokens": provenance.usage.prompt_tokens,
        "llm_completion_tokens": provenance.usage.completion_tokens,
        "llm_calls": provenance.calls,
    }
    return completed(job, outputs, usage, provenance.cost_usd)


def _webhook(job: Job, svc: NotesServices) -> None:
    url = job.options.webhook_url
    if not url:
        return
    blobs = svc.core.blobs
    receipt_uri = result_uri(svc.core.settings, job.job_id, WEBHOOK_RECEIPT)
    if blobs.stat(receipt_uri) is not None:
        return
    delivery_id = f"{job.job_id}:{WEBHOOK_EVENT}"
    if svc.webhooks is None:
        receipt = WebhookReceipt(
            url=url,
            delivered=False,
            error="no webhook signing secret is configured (AUDIONOTES_WEBHOOKS__SECRET)",
            delivery_id=delivery_id,
        )
    else:
        receipt = svc.webhooks.deliver(  # WebhookFailed propagates: redelivery retries it
            url,
            WEBHOOK_EVENT,
            {"job_id": job.job_id, "state": job.state.value, "outputs": job.outputs},
            delivery_id,
        )
    with contextlib.suppress(BlobExists):  # a concurrent delivery recorded it
        blobs.create(
            receipt_uri, receipt.model_dump_json().encode(), content_type="application/json"
        )
    if not receipt.delivered:
        log.error("webhook not delivered: %s", receipt.error, extra={"code": "webhook_refused"})
