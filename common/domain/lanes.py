"""Batch lanes: short jobs share one Cloud Run execution, so the model loads once for many.

A lane is one Firestore document per (Cloud Run job, model, shard). ``dispatch`` puts a short
job in the lane's queue (the job is DISPATCHED with ``coordination.batch_lane`` set and no
execution) and then, in one conditional write on the lane, either *hands it off* to the
execution the lane names (open, alive, not full) or *opens* the lane with a launch lease and
launches an execution itself. That execution registers in the lane, and drains the queue: it claims
waiting jobs one at a time (a conditional write on each job), transcribes them with the model
it loaded once, and lingers a little for more before it closes the lane and exits.

No job is left behind: the worker reads the lane, then queries the queue, and closes only if
the lane is unchanged since that read (``seq``); a dispatch writes the job before it hands it
off, and every hand-off bumps ``seq``. So either the close fails and the worker looks again,
or the hand-off fails (the lane is closed) and the dispatch opens a new execution.

Pure functions of the lane (each returns the new lane, or None for no change) so that the
store can apply them optimistically and re-run them on contention.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from common.domain.jobs import Job, JobState, utcnow
from common.domain.lease import Lease, fresh, holds, release

# The execution env var that makes a transcribe execution drain a lane after its first job.
LANE_ENV = "AUDIONOTES_TRANSCRIBE_LANE"
# Jobs of a lane that are not done yet: waiting for a worker, or claimed by one.
LANE_STATES = (JobState.DISPATCHED, JobState.TRANSCRIBING)


class Lane(BaseModel):
    key: str
    open: bool = False
    # The execution draining the lane (its full name), once it has registered.
    execution: str | None = None
    # A dispatch that opened the lane and is launching its execution holds this lease.
    pending: Lease | None = None
    handed: int = Field(default=0, ge=0)  # jobs given to the current execution
    seq: int = Field(default=0, ge=0)  # bumped by every change a draining worker must see
    updated_at: datetime | None = None


class LaneEnv(BaseModel):
    """What ``dispatch`` tells a lane execution (``LANE_ENV``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    linger_s: float = Field(ge=0)
    # Stop taking new jobs after this long, so the execution ends well inside its timeout.
    accept_for_s: float = Field(gt=0)

    def to_env(self) -> dict[str, str]:
        return {LANE_ENV: self.model_dump_json()}

    @classmethod
    def from_env(cls, environ: dict[str, str]) -> LaneEnv | None:
        raw = environ.get(LANE_ENV)
        return cls.model_validate_json(raw) if raw else None


def lane_key(run_job: str, model: str, job_id: str, shards: int) -> str:
    """Jobs spread over ``shards`` lanes per (job, model): parallel executions, and no single
    Firestore document taking every hand-off."""
    shard = int(hashlib.sha256(job_id.encode()).hexdigest()[:8], 16) % shards
    return f"{run_job}.{model}.{shard}".replace("/", "_")


# Lane changes ------------------------------------------------------------------------------


def accepts(lane: Lane, *, max_jobs: int, alive: Callable[[str], bool], now: datetime) -> bool:
    """Whether a job handed to this lane now will be drained by the lane's execution."""
    if not lane.open or lane.handed >= max_jobs:
        return False
    if lane.execution is not None:
        return alive(lane.execution)
    return fresh(lane.pending, now)


def handed_off(lane: Lane, now: datetime) -> Lane:
    return lane.model_copy(
        update={"handed": lane.handed + 1, "seq": lane.seq + 1, "updated_at": now}
    )


def opened(lane: Lane, claim: str, now: datetime, lease_s: float) -> Lane:
    """The lane for an execution we are about to launch (its first job is ours)."""
    return lane.model_copy(
        update={
            "open": True,
            "execution": None,
            "pending": Lease(holder=claim, taken_at=now, ttl_s=lease_s),
            "handed": 1,
            "seq": lane.seq + 1,
            "updated_at": now,
        }
    )


def launched(lane: Lane, claim: str, execution: str, now: datetime) -> Lane | None:
    """Record the execution we launched, unless it registered itself or the lane moved on."""
    if not lane.open or not holds(lane.pending, claim):
        return None
    return lane.model_copy(
        update={"execution": execution, "pending": release(lane.pending, claim), "updated_at": now}
    )


def launch_failed(lane: Lane, claim: str, now: datetime) -> Lane | None:
    if not holds(lane.pending, claim):
        return None
    return lane.model_copy(
        update={
            "open": False,
            "pending": release(lane.pending, claim),
            "seq": lane.seq + 1,
            "updated_at": now,
        }
    )


def registered(lane: Lane, execution: str, now: datetime) -> Lane | None:
    """A lane execution says it is draining (it may replace an older one, which drains on)."""
    if lane.open and lane.execution == execution:
        return None
    return lane.model_copy(
        update={
            "open": True,
            "execution": execution,
            "pending": None,
            "handed": lane.handed if lane.open else 0,
            "seq": lane.seq + 1,
            "updated_at": now,
        }
    )


def closed(lane: Lane, execution: str, seen_seq: int | None, now: datetime) -> Lane | None:
    """Close the lane we drain; with ``seen_seq``, only if nothing was handed since we saw it."""
    if not lane.open or lane.execution != execution:
        return None
    if seen_seq is not None and lane.seq != seen_seq:
        return None
    return lane.model_copy(
        update={"open": False, "execution": None, "seq": lane.seq + 1, "updated_at": now}
    )


# Jobs in a lane ----------------------------------------------------------------------------


def is_waiting(job: Job) -> bool:
    return (
        job.state == JobState.DISPATCHED
        and job.coordination.batch_lane is not None
        and job.execution is None
        and job.coordination.launch is None
    )


def claimed_by(job: Job, lane: str, execution: str) -> Job | None:
    """A worker's claim on a waiting job of its lane (None: taken, moved on, or not ours)."""
    if job.coordination.batch_lane != lane or not is_waiting(job):
        return None
    return job.model_copy(update={"execution": execution, "updated_at": utcnow()})


def launch_claimed(job: Job, claim: str, now: datetime, lease_s: float) -> Job | None:
    """The launch lease on a job waiting in a lane, taken by the dispatch that opens it."""
    if not is_waiting(job):
        return None
    return job.coordinated(launch=Lease(holder=claim, taken_at=now, ttl_s=lease_s))


# Stores ------------------------------------------------------------------------------------
