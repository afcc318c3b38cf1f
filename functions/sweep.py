"""``sweep``: jobs whose message was lost get it again, so that no job waits forever.

Every step of a job is driven by a Pub/Sub message. If one is lost (Pub/Sub restarted
without its state, as the local emulator does; a subscription recreated; a publish confirmed
and then dropped), the job would sit in its state forever. Cloud Scheduler calls this function
every few minutes; it finds jobs that have been in a waiting state longer than
``older_than_s`` and publishes the message that state waits for:

- QUEUED, DISPATCHED, TRANSCRIBING -> a transcription request. For the pull workers it says
  ``resend``: dispatch queues the chunks that have no result again (a worker runs nothing for
  a chunk another holds or finished), at most once per ``older_than_s`` per job. In per_job
  mode ``dispatch`` launches, or finds the execution alive and does nothing; a TRANSCRIBING
  job whose execution ended without finishing it, killed by its timeout or cancelled, is
  launched again, a bounded number of times;
- TRANSCRIBED, SUMMARIZING -> a transcript-ready message (``notes`` completes, or finds the
  notes already written and charges nothing).

It also finds what an event lost upstream leaves: an inbox object that never became a job
(its finalize event never arrived) is handled as the event would have been, and results whose
job no longer exists (its document expired or was withdrawn first) are deleted. Both scans
are bounded by ``max_objects`` per run.

It ends by scaling each tier's workers to its backlog, so queued chunks whose workers all
died (cancelled, or out of time) get new ones even when no new job arrives.

Every handler is idempotent, so a message that was only slow, not lost, costs a duplicate
delivery and nothing else.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from common.config.settings import DispatchMode, Tier
from common.domain.blobs import BlobRef
from common.domain.errors import ExecutorUnavailable, JobNotFound
from common.domain.jobs import Job, JobState, upload_job_id, utcnow
from common.domain.messages import TranscriptionRequested, TranscriptReady
from common.obs.logs import bind, get_logger
from functions.bootstrap import Services
from functions.dispatch_work import WorkDispatch, ensure_workers
from functions.uploads import (
    StorageObject,
    handle_upload,
    is_placeholder_or_part,
    publish_request,
)

log = get_logger(__name__)

# States a message moves a job out of, in the order they are swept.
SWEPT_STATES = (
    JobState.QUEUED,
    JobState.DISPATCHED,
    JobState.TRANSCRIBING,
    JobState.TRANSCRIBED,
    JobState.SUMMARIZING,
)
PAGE_SIZE = 100


class SweepRequest(BaseModel):
    """The body Cloud Scheduler posts (all fields optional)."""

    model_config = ConfigDict(extra="forbid")

    # Longer than any healthy stay in a swept state (a dispatch, a notes call with retries),
    # so that normally nothing is published twice.
    older_than_s: int = Field(default=900, ge=0, le=7 * 24 * 3600)
    # At most this many messages per run; the next run continues.
    max_jobs: int = Field(default=1000, ge=1, le=10_000)
    # Objects looked at per run in the inbox and in the results (0: skip those scans).
    max_objects: int = Field(default=10_000, ge=0, le=100_000)


@dataclass
class SweepReport:
    requests: list[str] = field(default_factory=list)
    ready: list[str] = field(default_factory=list)
    scanned: int = 0
    # Inbox objects that had no job and were handled as their lost event would have been.
    uploads: list[str] = field(default_factory=list)
    # Jobs whose results outlived the job document, and were deleted.
    orphaned_results: list[str] = field(default_factory=list)
    # Workers launched per tier for the backlog, and why a tier could not be looked at.
    workers_launched: dict[str, int] = field(default_factory=dict)
    workers_errors: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "workers_launched": self.workers_launched,
            "workers_errors": self.workers_errors,
            "scanned": self.scanned,
            "requests": self.requests,
            "ready": self.ready,
            "uploads": self.uploads,
            "orphaned_results": self.orphaned_results,
        }


def sweep(
    svc: Services,
    request: SweepRequest,
    *,
    work: WorkDispatch | None = None,
    now: datetime | None = None,
) -> SweepReport:
    now = now or utcnow()
    cutoff = now - timedelta(seconds=request.older_than_s)
    report = SweepReport()
    for state in SWEPT_STATES:
        for job in _jobs_in(svc, state):
            report.scanned += 1
            if not _stale(job, state, cutoff):
                continue
            if len(report.requests) + len(report.ready) >= request.max_jobs:
                log.warning("sweep stopped at %d jobs; the next run continues", request.max_jobs)
                return report
            with bind(job_id=job.job_id):
                _republish(svc, job, report)
    if request.max_objects:
        _lost_uploads(svc, request.max_objects, report)
        _orphaned_results(svc, request.max_objects, report)
    if work is not None and svc.settings.workers.mode == DispatchMode.WORKERS:
        for tier in Tier:
            try:
                report.workers_launched[tier.value] = ensure_workers(tier, svc, work)
            except ExecutorUnavailable as exc:
                # What was requeued stands; the next sweep (or dispatch) tops the tier up.
                log.error("sweep: could not top up the %s workers: %s", tier.value, exc)
                report.workers_errors[tier.value] = str(exc)
    log.info(
        "sweep: %d job(s) scanned, %d request(s) and %d ready message(s) published, "
        "%d lost upload(s) queued, %d orphaned result folder(s) deleted",
        report.scanned,
        len(report.requests),
        len(report.ready),
        len(report.uploads),
        len(report.orphaned_results),
        extra={"event": "sweep"},
    )
    return report


def _lost_uploads(svc: Services, limit: int, report: SweepReport) -> None:
    """Inbox objects without a job: on_upload never saw them. Handled exactly as their event
    would be (same job id, so an event still in flight and this agree on one job)."""
    b = svc.settings.buckets
    for uri in itertools.islice(svc.blobs.list(f"gs://{b.inbox}/{b.inbox_prefix}"), limit):
        name = BlobRef.parse(uri).name
        if is_placeholder_or_part(name):
            continue
        info = svc.blobs.stat(uri)
        if info is None or _exists(svc, upload_job_id(b.inbox, name, info.generation)):
            continue
        obj = StorageObject(
            bucket=b.inbox,
            name=name,
            generation=info.generation,
            size=info.size,
            contentType=info.content_type,
            metadata=info.metadata,
        )
        outcome = handle_upload(obj, svc)
        log.warning("inbox object %s had no job: %s", uri, outcome.value, extra={"event": "swept"})
        report.uploads.append(upload_job_id(b.inbox, name, info.generation))


def _orphaned_results(svc: Services, limit: int, report: SweepReport) -> None:
    b = svc.settings.buckets
    root = f"gs://{b.results}/{b.results_prefix}"
    seen: set[str] = set()
    for uri in itertools.islice(svc.blobs.list(root), limit):
        job_id = uri[len(root) :].split("/", 1)[0]
        if job_id in seen:
            continue
        seen.add(job_id)
        if not _exists(svc, job_id):
            deleted = svc.blobs.delete_prefix(f"{root}{job_id}/")
            log.warning(
                "results of job %s, which does not exist, deleted (%d objects)",
                job_id,
                deleted,
                extra={"event": "swept"},
            )
            report.orphaned_results.append(job_id)


def _exists(svc: Services, job_id: str) -> bool:
    try:
        svc.jobs.get(job_id)
    except JobNotFound:
        return False
    return True


def _jobs_in(svc: Services, state: JobState) -> Iterator[Job]:
    token: str | None = None
    while True:
        page = svc.jobs.list(state=state, limit=PAGE_SIZE, page_token=token)
        yield from (j for j in page.jobs if j.state == state)
        if page.next_page_token is None:
            return
        token = page.next_page_token


def _stale(job: Job, state: JobState, cutoff: datetime) -> bool:
    entered = job.state_times.get(state, job.updated_at)
    queued = job.coordination.work_queued_at  # chunks queued again restart the clock
    return max(entered, queued or entered) <= cutoff


def _republish(svc: Services, job: Job, report: SweepReport) -> None:
    s = svc.settings
    # Later stages continue the trace the job started in.
    trace = {"traceparent": job.traceparent} if job.traceparent else {}
    if job.state in (JobState.QUEUED, JobState.DISPATCHED, JobState.TRANSCRIBING):
        if job.state == JobState.QUEUED and job.coordination.request_message_id is None:
            publish_request(svc, job)  # never published (its creator died): record it too
        else:
            svc.publisher.publish(
                s.topics.transcription_requests,
                TranscriptionRequested(
                    job_id=job.job_id,
                    priority=job.options.priority,
                    resend=job.coordination.work_plan is not None,
                ),
                priority=job.options.priority.value,
                **trace,
            )
        report.requests.append(job.job_id)
    else:
        svc.publisher.publish(
            s.topics.transcripts_ready, TranscriptReady(job_id=job.job_id), **trace
        )
        report.ready.append(job.job_id)
    log.warning(
        "job %s stuck in %s since %s: its message published again",
        job.job_id,
        job.state,
        job.state_times.get(job.state),
        extra={"event": "swept", "state": job.state.value},
    )
