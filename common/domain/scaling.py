"""Pull workers: which queues a tier's workers serve, and how many workers a backlog needs.

Every chunk of every job is one message on its priority's work topic. A worker is one Cloud
Run task of a transcribe job that loads the model once and pulls chunks, high priority first,
until its queues stay empty or its time is nearly up (run_jobs/transcribe/worker.py). Dispatch
keeps the workers of a tier near ``backlog / backlog_per_worker``, capped by the tier's
``Workers.max_*`` (Terraform holds those to the GPU quota).

One scaling decision at a time per tier: the decider holds the tier's pool lease (a Firestore
document). A dispatch that finds the lease held sets ``recheck`` instead, and the holder
decides once more before it lets go, so a job queued during a decision is never left out.
Pure functions of the pool, like the other coordination documents, so the store can apply
them optimistically.
"""

from __future__ import annotations

import math
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from common.config.settings import Settings, Tier
from common.domain.jobs import Priority
from common.domain.lease import Lease, fresh, holds, release

# The execution env var that makes a transcribe task a pull worker (its value: WorkerEnv).
WORKER_ENV = "AUDIONOTES_TRANSCRIBE_WORKER"


class WorkerEnv(BaseModel):
    """What dispatch tells the workers it launches."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tier: Tier
    # The task timeout the execution was launched with: the worker stops taking chunks
    # ``Workers.reserve_s`` before it.
    timeout_s: float = Field(gt=0)

    def to_env(self) -> dict[str, str]:
        return {WORKER_ENV: self.model_dump_json()}

    @classmethod
    def from_env(cls, environ: dict[str, str]) -> WorkerEnv | None:
        raw = environ.get(WORKER_ENV)
        return cls.model_validate_json(raw) if raw else None


def priorities_served(tier: Tier, settings: Settings) -> tuple[Priority, ...]:
    """The queues a tier's workers pull from, in the order they are tried: high priority is
    always the GPU tier's and always first, so it never waits behind batch work."""
    batch = settings.executions.batch_tier
    served = [Priority.HIGH] if tier == Tier.GPU else []
    if batch == tier:
        served += [Priority.NORMAL, Priority.LOW]
    return tuple(served)


def work_topic(priority: Priority, settings: Settings) -> str:
    t = settings.topics
    return {Priority.HIGH: t.work_high, Priority.NORMAL: t.work_normal, Priority.LOW: t.work_low}[
        priority
    ]


def work_subscription(priority: Priority, settings: Settings) -> str:
    s = settings.subscriptions
    return {Priority.HIGH: s.work_high, Priority.NORMAL: s.work_normal, Priority.LOW: s.work_low}[
        priority
    ]


def max_workers(tier: Tier, settings: Settings) -> int:
    w = settings.workers
    return w.max_gpu if tier == Tier.GPU else w.max_cpu


def workers_needed(backlog_chunks: int, *, cap: int, per_worker: float) -> int:
    """Workers for a backlog: one per ``per_worker`` chunks, at least one while any is left."""
    if backlog_chunks <= 0:
        return 0
    return min(cap, math.ceil(backlog_chunks / per_worker))


def to_launch(backlog_chunks: int, running: int, *, cap: int, per_worker: float) -> int:
    """Workers to add now (never negative: idle workers leave on their own)."""
    return max(0, workers_needed(backlog_chunks, cap=cap, per_worker=per_worker) - running)


# The pool document -------------------------------------------------------------------------


class WorkerPool(BaseModel):
    """One per tier (collection ``Settings.collections.worker_pools``)."""

    tier: str
    lease: Lease | None = None  # held while one delivery decides and launches
    recheck: bool = False  # someone queued work during that decision: decide again
    launched: int = Field(default=0, ge=0)  # workers launched so far, for operators
    updated_at: datetime | None = None


def decision_taken(pool: WorkerPool, claim: str, now: datetime, ttl_s: float) -> WorkerPool | None:
    """Take the pool's lease, or, if another holds a fresh one, ask it to decide again."""
    if fresh(pool.lease, now) and not holds(pool.lease, claim):
        if pool.recheck:
            return None  # already asked
        return pool.model_copy(update={"recheck": True, "updated_at": now})
    lease = Lease(holder=claim, taken_at=now, ttl_s=ttl_s)
    return pool.model_copy(update={"lease": lease, "recheck": False, "updated_at": now})


def decision_done(pool: WorkerPool, claim: str, launched: int, now: datetime) -> WorkerPool | None:
    """After a decision: keep the lease (and clear ``recheck``) if one was asked for, else let
    go. None if the lease is no longer ours (it went stale and was taken over)."""
    if not holds(pool.lease, claim):
        return None
    update: dict[str, object] = {"launched": pool.launched + launched, "updated_at": now}
    if pool.recheck:
        update["recheck"] = False
    else:
        update["lease"] = release(pool.lease, claim)
    return pool.model_copy(update=update)
