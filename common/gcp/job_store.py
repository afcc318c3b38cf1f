"""Jobs in Firestore: idempotent create, reads, paginated lists and forward-only transitions.

Every read-modify-write is optimistic: it writes only if the job document is still the version
it read (an update-time precondition) and otherwise starts over, so concurrent handlers
(duplicate deliveries, parallel Cloud Run tasks) never regress a job or lose an update.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from common.domain.errors import InvalidInput, JobNotFound
from common.domain.jobs import Job, JobError, JobState, advance, utcnow
from common.domain.lanes import LANE_STATES
from common.domain.ports import MAX_PAGE_SIZE, Page, Transition
from common.gcp import clients
from common.gcp.firestore_calls import STORE_CALL, unavailable_as_domain_error
from common.gcp.optimistic_write import Snapshot, write_optimistically
from common.obs.logs import get_logger

log = get_logger(__name__)

# The document field a lane worker's query filters on (an index in terraform/modules/firestore).
LANE_FIELD = "coordination.batch_lane"
# The fields the workers' backlog sums over (an index in terraform/modules/firestore).
WORK_TIER_FIELD = "coordination.work_tier"
WORK_CHUNKS_FIELD = "coordination.work_chunks"
# The states in which a job's chunks are queued or being transcribed.
WORK_STATES = (JobState.DISPATCHED, JobState.TRANSCRIBING)


class FirestoreJobStore:
    def __init__(self, project: str, collection: str) -> None:
        self.project = project
        self.collection = collection

    @property
    def client(self) -> firestore.Client:
        return clients.firestore_client(self.project)  # one per process (common.gcp.clients)

    def _ref(self, job_id: str) -> firestore.DocumentReference:
        return self.client.collection(self.collection).document(job_id)

    def create(self, job: Job) -> tuple[Job, bool]:
        """Create unless it exists; returns ``(stored job, created)``.

        ``DocumentReference.create`` fails atomically when the document exists, so of many
        concurrent duplicates exactly one creates and the rest read the winner's job.
        """
        try:
            with unavailable_as_domain_error(f"create job {job.job_id}"):
                self._ref(job.job_id).create(job.to_document(), **STORE_CALL)
        except gexc.Conflict:  # AlreadyExists
            return self.get(job.job_id), False
        _log_state_change(None, job)
        return job, True

    def get(self, job_id: str) -> Job:
        with unavailable_as_domain_error(f"read job {job_id}"):
            snap = self._ref(job_id).get(**STORE_CALL)
        if not snap.exists:
            raise JobNotFound(f"no job {job_id}")
        return Job.model_validate(snap.to_dict())

    def list(
        self,
        *,
        owner: str | None = None,
        state: JobState | None = None,
        limit: int = 20,
        page_token: str | None = None,
    ) -> Page:
        """Newest first. Each filter combination has a composite index in Terraform."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE_SIZE}", code="bad_limit")
        query: Any = self.client.collection(self.collection)
        if owner is not None:
            query = query.where(filter=firestore.FieldFilter("owner", "==", owner))
        if state is not None:
            query = query.where(filter=firestore.FieldFilter("state", "==", state.value))
        query = query.order_by("created_at", direction=firestore.Query.DESCENDING)
        if page_token:
            with unavailable_as_domain_error("list jobs"):
                cursor = self._ref(_decode_token(page_token)).get(**STORE_CALL)
            # Another owner's job id answers like a made-up one: a token cannot probe ids.
            if not cursor.exists or (owner is not None and cursor.get("owner") != owner):
                raise InvalidInput("page_token is stale or invalid", code="bad_page_token")
            query = query.start_after(cursor)
        with unavailable_as_domain_error("list jobs"):
            snaps = list(query.limit(limit + 1).stream(**STORE_CALL))
        jobs = [Job.model_validate(s.to_dict()) for s in snaps[:limit]]
        more = len(snaps) > limit
        return Page(jobs=jobs, next_page_token=_encode_token(jobs[-1].job_id) if more else None)

    def in_lane(self, lane: str, *, limit: int = 100) -> Sequence[Job]:
        """The unfinished jobs of a batch lane (waiting or claimed), oldest first.

        Strongly consistent, as every Firestore query is: a job written before a lane hand-off
        is seen by a worker that queries after it (common/domain/lanes.py relies on this)."""
        query = (
            self.client.collection(self.collection)
            .where(filter=firestore.FieldFilter(LANE_FIELD, "==", lane))
            .where(filter=firestore.FieldFilter("state", "in", [s.value for s in LANE_STATES]))
            .order_by("created_at")
            .limit(limit)
        )
        with unavailable_as_domain_error(f"list lane {lane}"):
            return [Job.model_validate(s.to_dict()) for s in query.stream(**STORE_CALL)]

    def work_backlog(self, tier: str) -> int:
        query = (
            self.client.collection(self.collection)
            .where(filter=firestore.FieldFilter(WORK_TIER_FIELD, "==", tier))
            .where(filter=firestore.FieldFilter("state", "in", [s.value for s in WORK_STATES]))
        )
        with unavailable_as_domain_error(f"sum the {tier} backlog"):
            results = query.sum(WORK_CHUNKS_FIELD, alias="chunks").get(**STORE_CALL)
        # One row of one aggregation; the emulator and the service both answer so.
        values = [r.value for row in results for r in row]  # type: ignore[attr-defined]
        return int(values[0] or 0) if values else 0

    def transition(
        self,
        job_id: str,
        to: JobState,
        *,
        error: JobError | None = None,
        outputs: dict[str, str] | None = None,
        execution: str | None = None,
    ) -> Transition:
        """Move the job forward (see ``jobs.advance``); a repeat of its current state is a no-op."""
        holder: dict[str, Any] = {}

        def change(job: Job) -> Job | None:
            holder["previous"] = job.state
            new, changed = advance(job, to, error=error, outputs=outputs, execution=execution)
            holder["changed"] = changed
            return new if changed else None

        job = self._mutate(job_id, change)
        previous: JobState = holder["previous"]
        return Transition(job=job, changed=holder["changed"], previous=previous)

    def set_progress(self, job_id: str, progress: float) -> Job:
        """Progress only rises, and only while the job is still running."""
        progress = min(max(progress, 0.0), 1.0)

        def change(job: Job) -> Job | None:
            if job.state.is_final or progress <= job.progress:
                return None
            return job.model_copy(update={"progress": progress, "updated_at": utcnow()})

        return self._mutate(job_id, change)

    def update(self, job_id: str, change: Callable[[Job], Job | None]) -> Job:
        """Any other read-modify-write; ``change`` returns the new job or None for no change.

        ``change`` may run more than once (a concurrent write makes us read again and retry),
        so it must be a pure function of the job it is given.
        """
        return self._mutate(job_id, change)

    def delete(self, job_id: str) -> bool:
        ref = self._ref(job_id)
        with unavailable_as_domain_error(f"delete job {job_id}"):
            existed = bool(ref.get(**STORE_CALL).exists)
            ref.delete(**STORE_CALL)
        return existed

    def _mutate(self, job_id: str, change: Callable[[Job], Job | None]) -> Job:
        """Apply ``change`` to the job as stored now; never over a concurrent change."""

        def parse(snap: Snapshot) -> Job:
            if not snap.exists:  # never there, or deleted meanwhile
                raise JobNotFound(f"no job {job_id}")
            return Job.model_validate(snap.to_dict())

        with unavailable_as_domain_error(f"update job {job_id}"):
            before, new = write_optimistically(
                self.client, self._ref(job_id), parse, change, what=f"job {job_id}", call=STORE_CALL
            )
        if new is None:
            return before
        if new.state != before.state:
            _log_state_change(before, new)
        return new


def _log_state_change(before: Job | None, after: Job) -> None:
    """One line per state entered: the log-based metrics job_transitions and stage_duration
    (terraform/modules/monitoring) count and time these."""
    entered = before.state_times.get(before.state) if before else None
    log.info(
        "job %s: %s -> %s",
        after.job_id,
        before.state.value if before else "-",
        after.state.value,
        extra={
            "event": "job_state",
            "job_id": after.job_id,
            "state": after.state.value,
            "previous_state": before.state.value if before else None,
            "duration_s": round((after.updated_at - entered).total_seconds(), 3)
            if entered
            else None,
            "code": after.error.code if after.error else None,
        },
    )


def _encode_token(job_id: str) -> str:
    return base64.urlsafe_b64encode(job_id.encode()).decode().rstrip("=")


def _decode_token(token: str) -> str:
    try:
        padded = token + "=" * (-len(token) % 4)
        job_id = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidInput("page_token is not valid", code="bad_page_token") from exc
    # A job id is a document id: never empty, never a path.
    if not job_id or "/" in job_id or not job_id.isprintable():
        raise InvalidInput("page_token is not valid", code="bad_page_token")
    return job_id
