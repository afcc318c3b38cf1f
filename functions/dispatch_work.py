"""Dispatch for the pull workers (``Settings.workers.mode`` workers, the default): a job's
chunks go to its priority's work queue, and the tier's workers are kept near what the
backlog needs (``common/domain/scaling.py``).

At-least-once: the QUEUED -> DISPATCHED write records the plan and the chunk count; the chunks
are then published and ``work_queued_at`` recorded. A redelivery publishes only if that record
is missing (the first delivery died in between), so normally each chunk is queued once; when
two deliveries race, a chunk may be queued twice, which costs one extra message (a worker
finds the result stored, or the chunk claimed by another, and runs nothing). The sweep's
``resend`` queues the chunks without a result again, for work lost with a queue.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from common.config.settings import Settings, Tier
from common.domain.jobs import Job, JobState, dispatched, utcnow, work_queued
from common.domain.lease import holds, release
from common.domain.messages import ChunkWork
from common.domain.ports import Launcher, PoolStore
from common.domain.scaling import (
    WorkerEnv,
    WorkerPool,
    decision_done,
    decision_taken,
    max_workers,
    to_launch,
    work_topic,
)
from common.domain.transcription_plan import ChunkPlan, tier_for, work_prefix
from common.obs.logs import get_logger
from functions.bootstrap import Services

log = get_logger(__name__)

# Decisions one lease holder makes in a row while others ask it to look again.
MAX_ROUNDS = 3


@dataclass(frozen=True)
class WorkDispatch:
    launcher: Launcher
    pools: PoolStore


def run_job_for(tier: Tier, settings: Settings) -> tuple[str, int]:
    """The Cloud Run job of a tier, and the task timeout that job allows."""
    t = settings.executions
    if tier == Tier.GPU:
        return settings.run_jobs.transcribe_gpu, t.gpu_task_timeout_s
    return settings.run_jobs.transcribe_cpu, t.cpu_task_timeout_s


def dispatch_to_queue(job: Job, plan: ChunkPlan, svc: Services) -> Job:
    """QUEUED -> DISPATCHED with what the workers and the scaler need (a no-op if it moved)."""
    tier = tier_for(job.options.priority, svc.settings)
    return svc.jobs.update(
        job.job_id,
        lambda j: dispatched(
            j,
            plan.duration_s,
            work_tier=tier.value,
            work_chunks=plan.chunk_count,
            work_plan=plan.model_dump_json(),
        ),
    )


def queue_chunks(job: Job, svc: Services, *, resend: bool) -> int:
    """Publish the job's chunks that have no result yet (all, the first time); how many."""
    c = job.coordination
    if c.work_plan is None or job.state not in (JobState.DISPATCHED, JobState.TRANSCRIBING):
        return 0
    if c.work_queued_at is not None and not resend:
        return 0
    plan = ChunkPlan.model_validate_json(c.work_plan)
    prefix = work_prefix(svc.settings, plan)
    done = {u.rsplit("/", 1)[1] for u in svc.blobs.list(prefix)}
    topic = work_topic(job.options.priority, svc.settings)
    queued = 0
    for index in range(plan.chunk_count):
        if f"chunk-{index:04d}.json" in done:
            continue
        svc.publisher.publish(
            topic,
            ChunkWork(job_id=job.job_id, index=index, plan=plan),
            priority=job.options.priority.value,
            chunk=str(index),
        )
        queued += 1
    svc.jobs.update(job.job_id, lambda j: work_queued(j, utcnow(), requeue=resend))
    log.info(
        "%s %d of %d chunk(s) to %s",
        "queued again" if resend else "queued",
        queued,
        plan.chunk_count,
        topic,
        extra={"event": "chunks_queued", "chunks": queued},
    )
    return queued


def ensure_workers(tier: Tier, svc: Services, deps: WorkDispatch) -> int:
    """Launch the workers the tier's backlog needs beyond those running; how many were
    launched (0 also when another delivery is deciding: it will look again for us)."""
    s = svc.settings
    claim = uuid.uuid4().hex
    pool = deps.pools.update(
        tier.value, lambda p: decision_taken(p, claim, utcnow(), s.workers.scale_lease_s)
    )
    if not holds(pool.lease, claim):
        return 0
    run_job, timeout_s = run_job_for(tier, s)
    cap = max_workers(tier, s)
    total = 0
    try:
        for _ in range(MAX_ROUNDS):
            backlog = svc.jobs.work_backlog(tier.value)
            # A task older than its timeout has ended, whatever the listing still says; with
            # nothing queued (or the tier off) nothing is launched, so nothing is listed.
            running = (
                deps.launcher.active_tasks(run_job, within_s=timeout_s + 60)
                if backlog and cap
                else 0
            )
            count = to_launch(backlog, running, cap=cap, per_worker=s.workers.backlog_per_worker)
            if count:
                execution = deps.launcher.launch(
                    run_job,
                    env=WorkerEnv(tier=tier, timeout_s=timeout_s).to_env(),
                    task_count=count,
                    timeout_s=timeout_s,
                )
                log.info(
                    "launched %d %s worker(s) as %s: %d chunk(s) queued, %d running, cap %d",
                    count,
                    tier.value,
                    execution,
                    backlog,
                    running,
                    cap,
                    extra={"event": "workers_launched", "workers": count},
                )
            total += count
            done = deps.pools.update(tier.value, _decided(claim, count))
            if not holds(done.lease, claim):
                return total  # let go, or taken over after our lease went stale
    except Exception:
        deps.pools.update(tier.value, lambda p: _released(p, claim))
        raise
    deps.pools.update(tier.value, lambda p: _released(p, claim))
    return total


def _decided(claim: str, launched: int) -> Callable[[WorkerPool], WorkerPool | None]:
    return lambda pool: decision_done(pool, claim, launched, utcnow())


def _released(pool: WorkerPool, claim: str) -> WorkerPool | None:
    if not holds(pool.lease, claim):
        return None
    return pool.model_copy(update={"lease": release(pool.lease, claim), "updated_at": utcnow()})
