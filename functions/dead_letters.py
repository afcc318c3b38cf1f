"""``dead_letters``: a message Pub/Sub gave up on marks its job FAILED, with the reason.

The dead-letter topics (``transcription-requests-dead-letter``,
``transcripts-ready-dead-letter``, ``transcription-work-dead-letter``) push here. Pub/Sub
forwards the original body and attributes and adds its own:
``CloudPubSubDeadLetterSourceSubscription`` (where delivery failed) and
``CloudPubSubDeadLetterSourceDeliveryCount`` (how many times it tried).

Only a job still waiting for the step that message was for is failed: a transcription
request covers QUEUED and DISPATCHED (unless the job's execution is alive: a later delivery
launched it), a chunk of work covers DISPATCHED and TRANSCRIBING, a transcript-ready message
covers TRANSCRIBED and SUMMARIZING. A job that moved
on meanwhile, or is final, is left as it is, so a late or repeated dead letter changes
nothing. A body without a job id is logged and acknowledged: nothing can be done with it.
Anything transient (Firestore, Cloud Run) raises, and Pub/Sub delivers the dead letter again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from common.config.settings import Settings
from common.domain.errors import InvalidInput, JobNotFound
from common.domain.jobs import Job, JobError, JobState, failed_if_unchanged
from common.domain.messages import TranscriptReady, decode_push
from common.domain.ports import Launcher
from common.obs.logs import get_logger
from functions.bootstrap import Services

log = get_logger(__name__)

SOURCE_SUBSCRIPTION = "CloudPubSubDeadLetterSourceSubscription"
DELIVERY_COUNT = "CloudPubSubDeadLetterSourceDeliveryCount"
ERROR_CODE = "dead_lettered"


class DeadLetterOutcome(StrEnum):
    FAILED = "failed"  # the job is FAILED with the reason
    ALREADY_FAILED = "already_failed"  # a repeated dead letter: nothing changed
    NOT_STUCK = "not_stuck"  # the job moved past that step (or is final): left alone
    IGNORED = "ignored"  # no job id, or no such job


@dataclass(frozen=True)
class DeadLetter:
    """What Pub/Sub forwarded: the job, where delivery failed, and how often it tried."""

    job_id: str | None
    subscription: str
    delivery_count: str
    message_id: str
    traceparent: str | None = None

    @classmethod
    def from_push(cls, data: Mapping[str, Any] | None) -> DeadLetter:
        """Never raises: an unusable body gives ``job_id=None``."""
        message: Mapping[str, Any] = {}
        if isinstance(data, Mapping) and isinstance(data.get("message"), Mapping):
            message = data["message"]
        raw_attributes = message.get("attributes")
        attributes = {
            str(k): str(v)
            for k, v in (raw_attributes.items() if isinstance(raw_attributes, Mapping) else ())
        }
        job_id: str | None
        try:
            # Both topics' bodies carry job_id (TranscriptionRequested, TranscriptReady).
            body, _ = decode_push(data, TranscriptReady)
            job_id = body.job_id
        except InvalidInput:
            job_id = attributes.get("job_id")  # the publisher sets it on every message
        return cls(
            job_id=job_id or None,
            subscription=attributes.get(SOURCE_SUBSCRIPTION, "an unknown subscription"),
            delivery_count=attributes.get(DELIVERY_COUNT, "several"),
            message_id=str(message.get("messageId") or message.get("message_id") or "?"),
            traceparent=attributes.get("traceparent"),
        )

    @property
    def subscription_id(self) -> str:
        """The short id (the attribute may hold it alone or the full resource name)."""
        return self.subscription.rsplit("/", 1)[-1]

    def error(self) -> JobError:
        return JobError(
            code=ERROR_CODE,
            message=(
                f"Pub/Sub gave up on message {self.message_id} after {self.delivery_count} "
                f"delivery attempts on subscription {self.subscription_id}; its handler kept "
                "failing (see that function's logs for this job)"
            ),
        )


def stuck_states(subscription_id: str, settings: Settings) -> frozenset[JobState]:
    """The states a job is in while it waits for that subscription's handler."""
    subs = settings.subscriptions
    if subscription_id == subs.dispatch:
        return frozenset({JobState.QUEUED, JobState.DISPATCHED})
    if subscription_id == subs.notes:
        return frozenset({JobState.TRANSCRIBED, JobState.SUMMARIZING})
    if subscription_id in (subs.work_high, subs.work_normal, subs.work_low):
        # A chunk no worker could finish: the job can never be merged.
        return frozenset({JobState.DISPATCHED, JobState.TRANSCRIBING})
    return frozenset()


def handle_dead_letter(letter: DeadLetter, svc: Services, launcher: Launcher) -> DeadLetterOutcome:
    if letter.job_id is None:
        log.error(
            "dead letter %s from %s names no job; dropped",
            letter.message_id,
            letter.subscription,
            extra={"code": "bad_message"},
        )
        return DeadLetterOutcome.IGNORED
    try:
        job = svc.jobs.get(letter.job_id)
    except JobNotFound:
        log.warning("dead letter for job %s, which is gone", letter.job_id)
        return DeadLetterOutcome.IGNORED
    error = letter.error()
    if job.state == JobState.FAILED and job.error == error:
        return DeadLetterOutcome.ALREADY_FAILED
    stuck = stuck_states(letter.subscription_id, svc.settings)
    if not stuck:
        log.error(
            "dead letter from unexpected subscription %s for job %s; job left %s",
            letter.subscription,
            job.job_id,
            job.state,
            extra={"code": "unexpected_dead_letter"},
        )
        return DeadLetterOutcome.IGNORED
    if job.state not in stuck or _running(job, launcher):
        log.warning(
            "dead letter from %s, but the job is %s: left alone (%s)",
            letter.subscription_id,
            job.state,
            error.message,
            extra={"code": "dead_letter_late"},
        )
        return DeadLetterOutcome.NOT_STUCK
    failed = svc.jobs.update(job.job_id, lambda j: failed_if_unchanged(j, job, error))
    if failed.state != JobState.FAILED or failed.error != error:
        return DeadLetterOutcome.NOT_STUCK  # it moved on between our read and our write
    log.error("job failed: %s", error.message, extra={"code": ERROR_CODE})
    return DeadLetterOutcome.FAILED


def _running(job: Job, launcher: Launcher) -> bool:
    """A DISPATCHED job whose execution lives is being transcribed: not stuck."""
    return (
        job.state == JobState.DISPATCHED
        and job.execution is not None
        and launcher.is_alive(job.execution)
    )
