"""``dispatch``: a QUEUED job's chunks go to the pull workers' queues, and the workers are
scaled by backlog (``functions/dispatch_work.py``, ``Settings.workers.mode`` workers, the
default). The rest of this docstring is the earlier design, ``workers.mode`` per_job, kept for
side-by-side measurement (bench/load.py) and for deployments that want it: a QUEUED job
becomes one Cloud Run execution of the transcribe job.

It chooses the tier (high priority -> the GPU job, normal and low -> ``batch_tier``), the
model (the job's option, mapped through ``Settings.transcription.models``) and the chunk plan
(``Limits.chunk_seconds`` per task, so no GPU task nears Cloud Run's 1-hour limit), launches
the execution and records its name; it never waits for the execution.

At-least-once delivery, one execution: the QUEUED -> DISPATCHED transition also writes a
launch lease (``Job.coordination.launch``, for ``launch_lease_s``), in one conditional write.
Only the delivery that took the lease launches, and it swaps the lease for the execution's name
(``Job.execution``). A redelivery finds either a lease (fresh: retry later; stale: its holder
died, take it over) or an execution (alive: nothing to do; finished or gone while the
job is still DISPATCHED: launch again).

Short jobs on the batch tier go through a batch lane instead (``common/domain/lanes.py``): they
wait in the lane's queue and are handed to the execution draining it, which loads the model
once for all of them; only when no open lane will take a job does its dispatch launch one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from opentelemetry import trace

from common.config.settings import DispatchMode, Settings, Tier
from common.domain.errors import Busy, InvalidInput, JobNotFound
from common.domain.jobs import (
    Job,
    JobError,
    JobState,
    Priority,
    dispatched,
    launch_settled,
    launch_taken_over,
    utcnow,
)
from common.domain.lanes import (
    Lane,
    LaneEnv,
    accepts,
    handed_off,
    is_waiting,
    lane_key,
    launch_claimed,
    launch_failed,
    launched,
    opened,
)
from common.domain.lease import Lease, fresh, holds
from common.domain.messages import TranscriptionRequested
from common.domain.ports import LaneStore, Launcher
from common.domain.transcription_plan import TRACEPARENT_ENV, ChunkPlan, resolve_model, tier_for
from common.gcp.cloud_run import CloudRunLauncher
from common.gcp.coordination_store import FirestoreLaneStore, FirestorePoolStore
from common.obs.logs import current_traceparent, get_logger
from functions.bootstrap import Services, services
from functions.dispatch_source import Prober, SourceProber
from functions.dispatch_work import (
    WorkDispatch,
    dispatch_to_queue,
    ensure_workers,
    queue_chunks,
    run_job_for,
)

log = get_logger(__name__)


class DispatchOutcome(StrEnum):
    LAUNCHED = "launched"
    ALREADY_RUNNING = "already_running"
    BATCHED = "batched"  # handed to the execution draining its batch lane
    QUEUED = "queued"  # its chunks are in the work queue
    ALREADY_QUEUED = "already_queued"  # a redelivery: the chunks were queued before
    NOT_NEEDED = "not_needed"  # the job moved on, was deleted or is final
    REJECTED = "rejected"  # the job is FAILED with a clear error


@dataclass(frozen=True)
class DispatchServices:
    launcher: Launcher
    prober: Prober
    lanes: LaneStore | None = None  # None: no batch lanes, every job its own execution
    work: WorkDispatch | None = None  # None: no pull workers (per_job mode only)


def build_dispatch_services(svc: Services) -> DispatchServices:
    s = svc.settings
    launcher = CloudRunLauncher(s)
    return DispatchServices(
        launcher=launcher,
        prober=SourceProber(s, svc.blobs),
        lanes=FirestoreLaneStore(s.project, s.collections.batch_lanes),
        work=WorkDispatch(
            launcher=launcher, pools=FirestorePoolStore(s.project, s.collections.worker_pools)
        ),
    )


@lru_cache(maxsize=1)
def dispatch_services() -> DispatchServices:
    """The process's launcher, prober and lane store, built on first use (never at import)."""
    return build_dispatch_services(services())


def handle_dispatch(
    request: TranscriptionRequested, svc: Services, deps: DispatchServices
) -> DispatchOutcome:
    try:
        job = svc.jobs.get(request.job_id)
    except JobNotFound:
        log.warning("no job %s (deleted?); nothing to dispatch", request.job_id)
        return DispatchOutcome.NOT_NEEDED
    to_workers = svc.settings.workers.mode == DispatchMode.WORKERS and deps.work is not None
    if job.coordination.work_plan is not None or (to_workers and job.state == JobState.QUEUED):
        return _to_workers(job, request, svc, deps)
    if job.state == JobState.QUEUED:
        try:
            plan = plan_job(job, svc.settings, deps.prober)
        except InvalidInput as exc:
            return _reject(job, exc, svc)
        lane = lane_for(job, plan, svc.settings, deps)
        if lane is not None:
            queued = {"batch_lane": lane.key, "batch_plan": plan.model_dump_json()}
            job = svc.jobs.update(job.job_id, lambda j: dispatched(j, plan.duration_s, **queued))
            if is_waiting(job):
                return _offer(job, plan, lane, svc, deps)
            return _redelivered(job, svc, deps)
        claim = uuid.uuid4().hex
        lease_s = svc.settings.executions.launch_lease_s
        job = svc.jobs.update(
            job.job_id,
            lambda j: dispatched(
                j, plan.duration_s, launch=Lease(holder=claim, taken_at=utcnow(), ttl_s=lease_s)
            ),
        )
        if holds(job.coordination.launch, claim):
            return _launch(job, plan, claim, svc, deps)
    return _redelivered(job, svc, deps)


def _to_workers(
    job: Job, request: TranscriptionRequested, svc: Services, deps: DispatchServices
) -> DispatchOutcome:
    if deps.work is None:
        raise Busy(f"job {job.job_id} is queued for pull workers, but this dispatch has none")
    if job.state == JobState.QUEUED:
        try:
            plan = plan_job(job, svc.settings, deps.prober)
        except InvalidInput as exc:
            return _reject(job, exc, svc)
        job = dispatch_to_queue(job, plan, svc)
    tier = job.coordination.work_tier
    if tier is None or job.state not in (JobState.DISPATCHED, JobState.TRANSCRIBING):
        log.info("job is %s; nothing to dispatch", job.state, extra={"event": "duplicate"})
        return DispatchOutcome.NOT_NEEDED
    queued = queue_chunks(job, svc, resend=request.resend)
    ensure_workers(Tier(tier), svc, deps.work)
    return DispatchOutcome.QUEUED if queued else DispatchOutcome.ALREADY_QUEUED


def plan_job(job: Job, settings: Settings, prober: Prober) -> ChunkPlan:
    model = resolve_model(job.options, settings)
    info = prober.probe(job.source.uri)
    if info.duration_s > settings.limits.max_audio_seconds:
        raise InvalidInput(
            f"the audio is {info.duration_s:.0f} s long; the limit is "
            f"{settings.limits.max_audio_seconds} s",
            code="too_long",
        )
    return ChunkPlan.for_job(
        job_id=job.job_id,
        model=model,
        language=job.options.language,
        task=job.options.task,
        vocabulary=tuple(job.options.vocabulary),
        speakers=str(job.options.speaker_spec),
        duration_s=info.duration_s,
        chunk_seconds=settings.limits.chunk_seconds,
        overlap_s=settings.transcription.chunk_overlap_s,
    )


def lane_for(
    job: Job, plan: ChunkPlan, settings: Settings, deps: DispatchServices
) -> LaneEnv | None:
    """The batch lane of a short job on the batch tier; None: it gets its own execution."""
    lanes = settings.batch_lanes
    short = plan.chunk_count == 1 and plan.duration_s <= lanes.short_max_s
    if deps.lanes is None or lanes.short_max_s <= 0 or not short:
        return None
    if job.options.priority == Priority.HIGH:
        return None  # high priority never waits behind other jobs
    run_job, _ = choose_tier(job.options.priority, settings)
    return _lane_env(lane_key(run_job, plan.model, job.job_id, lanes.count), job, settings)


def _lane_env(key: str, job: Job, settings: Settings) -> LaneEnv:
    _, timeout_s = choose_tier(job.options.priority, settings)
    return LaneEnv(key=key, linger_s=settings.batch_lanes.linger_s, accept_for_s=timeout_s / 2)


def choose_tier(priority: Priority, settings: Settings) -> tuple[str, int]:
    """The Cloud Run job for a priority, and the task timeout that job allows."""
    return run_job_for(tier_for(priority, settings), settings)


# Launching ----------------------------------------------------------------------------------


def _offer(
    job: Job, plan: ChunkPlan, lane: LaneEnv, svc: Services, deps: DispatchServices
) -> DispatchOutcome:
    """Hand a waiting job to its lane's execution or, if none will take it, open the lane and
    launch one (whose first job is this one)."""
    assert deps.lanes is not None
    s = svc.settings
    claim = uuid.uuid4().hex
    alive: dict[str, bool] = {}

    def is_alive(execution: str) -> bool:
        if execution not in alive:
            alive[execution] = deps.launcher.is_alive(execution)
        return alive[execution]

    def offer(current: Lane) -> Lane:
        now = utcnow()
        if accepts(current, max_jobs=s.batch_lanes.max_jobs, alive=is_alive, now=now):
            return handed_off(current, now)
        return opened(current, claim, now, s.executions.launch_lease_s)

    stored = deps.lanes.update(lane.key, offer)
    if not holds(stored.pending, claim):
        log.info(
            "handed to lane %s (execution %s, job %d of it)",
            lane.key,
            stored.execution or "starting",
            stored.handed,
            extra={"event": "batched"},
        )
        trace.get_current_span().set_attributes({"lane": lane.key, "batched": True})
        return DispatchOutcome.BATCHED
    # A lane worker draining the queue may have taken the job meanwhile: launch all the same,
    # since jobs handed to the lane from now on wait for this execution.
    job = svc.jobs.update(
        job.job_id, lambda j: launch_claimed(j, claim, utcnow(), s.executions.launch_lease_s)
    )
    return _launch(job, plan, claim, svc, deps, lane=lane)


def _launch(
    job: Job,
    plan: ChunkPlan,
    claim: str,
    svc: Services,
    deps: DispatchServices,
    *,
    lane: LaneEnv | None = None,
) -> DispatchOutcome:
    run_job, timeout_s = choose_tier(job.options.priority, svc.settings)
    try:
        env = plan.to_env()
        if lane is not None:
            env.update(lane.to_env())
        if traceparent := current_traceparent():
            env[TRACEPARENT_ENV] = traceparent
        execution = deps.launcher.launch(
            run_job, env=env, task_count=plan.chunk_count, timeout_s=timeout_s
        )
    except Exception:
        svc.jobs.update(job.job_id, lambda j: launch_settled(j, claim, None))
        if lane is not None and deps.lanes is not None:
            deps.lanes.update(lane.key, lambda current: launch_failed(current, claim, utcnow()))
        raise
    if lane is not None and deps.lanes is not None:
        deps.lanes.update(lane.key, lambda current: launched(current, claim, execution, utcnow()))
    stored = svc.jobs.update(job.job_id, lambda j: launch_settled(j, claim, execution))
    trace.get_current_span().set_attributes(
        {
            "execution": execution,
            "run_job": run_job,
            "model": plan.model,
            "chunks": plan.chunk_count,
            "audio_s": plan.duration_s,
        }
    )
    if stored.execution != execution:
        log.warning(
            "launched %s but the job now records %s; the worker will find the job taken",
            execution,
            stored.execution,
        )
    log.info(
        "launched %s: %d task(s) of %s, model %s, %.0f s of audio",
        execution,
        plan.chunk_count,
        run_job,
        plan.model,
        plan.duration_s,
        extra={"event": "dispatched"},
    )
    return DispatchOutcome.LAUNCHED


def _redelivered(job: Job, svc: Services, deps: DispatchServices) -> DispatchOutcome:
    # A TRANSCRIBING job is checked too (the sweep asks): if its execution ended without
    # finishing it (a task killed by its timeout, the execution cancelled or out of retries),
    # nothing else would ever move it on.
    resumable = job.state == JobState.TRANSCRIBING and job.execution is not None
    if job.state != JobState.DISPATCHED and not resumable:
        log.info("job is %s; nothing to dispatch", job.state, extra={"event": "duplicate"})
        return DispatchOutcome.NOT_NEEDED
    c = job.coordination
    if is_waiting(job) and deps.lanes is not None and c.batch_lane and c.batch_plan:
        # Still waiting in its lane (its execution may have died): offer it again.
        plan = ChunkPlan.model_validate_json(c.batch_plan)
        return _offer(job, plan, _lane_env(c.batch_lane, job, svc.settings), svc, deps)
    if c.launch is not None:
        if fresh(c.launch, utcnow()):
            raise Busy(f"job {job.job_id}: another delivery is launching its execution")
    elif job.execution is not None and deps.launcher.is_alive(job.execution):
        log.info("execution %s is alive; not launching another", job.execution)
        return DispatchOutcome.ALREADY_RUNNING
    # The launcher died, or the execution ended without finishing the job: launch again (the
    # new tasks skip the chunks already stored), a bounded number of times.
    if job.attempts >= svc.settings.executions.max_relaunches:
        message = (
            f"its transcription was launched {job.attempts + 1} times and never finished "
            f"(last execution: {job.execution or 'none recorded'})"
        )
        svc.jobs.transition(
            job.job_id, JobState.FAILED, error=JobError(code="transcription_lost", message=message)
        )
        log.error("job failed: %s", message, extra={"code": "transcription_lost"})
        return DispatchOutcome.REJECTED
    try:
        plan = plan_job(job, svc.settings, deps.prober)
    except InvalidInput as exc:
        return _reject(job, exc, svc)
    claim = uuid.uuid4().hex
    lease_s = svc.settings.executions.launch_lease_s
    stored = svc.jobs.update(
        job.job_id, lambda j: launch_taken_over(j, job, claim, utcnow(), lease_s)
    )
    if not holds(stored.coordination.launch, claim):
        raise Busy(f"job {job.job_id}: another delivery took over its launch")
    was = job.execution or (c.launch.holder if c.launch else None)
    log.warning("relaunching job %s (was %s)", job.job_id, was)
    lane = _lane_env(c.batch_lane, job, svc.settings) if c.batch_lane else None
    return _launch(stored, plan, claim, svc, deps, lane=lane)


def _reject(job: Job, exc: InvalidInput, svc: Services) -> DispatchOutcome:
    error = JobError(code=exc.code, message=exc.message)
    svc.jobs.transition(job.job_id, JobState.FAILED, error=error)
    log.warning("job rejected: %s", exc.message, extra={"code": exc.code})
    return DispatchOutcome.REJECTED
