"""``dispatch``: a QUEUED job becomes one Cloud Run execution of the transcribe job.

It chooses the tier (high priority -> the GPU job, normal and low -> ``batch_tier``), the
model (the job's option, mapped through ``Settings.transcription.models``) and the chunk plan
(``Limits.chunk_seconds`` per task, so no GPU task nears Cloud Run's 1-hour limit), launches
the execution and records its name; it never waits for the execution.

At-least-once delivery, one execution: the QUEUED -> DISPATCHED transition also writes a
launch claim (``launching/<token>/<unix time>``) into ``Job.execution``, in one transaction.
Only the delivery that wrote the claim launches, and it replaces the claim with the
execution's name. A redelivery finds either a claim (younger than ``launch_lease_s``: retry
later; older: its holder died, take it over) or an execution (alive: nothing to do; finished
or gone while the job is still DISPATCHED: launch again).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from common.errors import Busy, InvalidInput, JobNotFound
from common.jobs import Job, JobError, JobState, Priority, advance
from common.logs import current_traceparent, get_logger
from common.messages import TranscriptionRequested
from common.settings import Settings, Tier
from common.transcription_plan import TRACEPARENT_ENV, ChunkPlan
from functions.bootstrap import Services, services
from functions.dispatch_launcher import CloudRunLauncher, Launcher
from functions.dispatch_source import Prober, SourceProber

log = get_logger(__name__)

CLAIM_PREFIX = "launching/"


class Outcome(StrEnum):
    LAUNCHED = "launched"
    ALREADY_RUNNING = "already_running"
    NOT_NEEDED = "not_needed"  # the job moved on, was deleted or is final
    REJECTED = "rejected"  # the job is FAILED with a clear error


@dataclass(frozen=True)
class DispatchDeps:
    launcher: Launcher
    prober: Prober


def build_deps(svc: Services) -> DispatchDeps:
    return DispatchDeps(
        launcher=CloudRunLauncher(svc.settings), prober=SourceProber(svc.settings, svc.blobs)
    )


@lru_cache(maxsize=1)
def dispatch_deps() -> DispatchDeps:
    """The process's launcher and prober, built on first use (never at import)."""
    return build_deps(services())


def handle_dispatch(request: TranscriptionRequested, svc: Services, deps: DispatchDeps) -> Outcome:
    try:
        job = svc.jobs.get(request.job_id)
    except JobNotFound:
        log.warning("no job %s (deleted?); nothing to dispatch", request.job_id)
        return Outcome.NOT_NEEDED
    if job.state == JobState.QUEUED:
        try:
            plan = plan_job(job, svc.settings, deps.prober)
        except InvalidInput as exc:
            return _reject(job, exc, svc)
        claim = _new_claim()
        job = svc.jobs.update(job.job_id, lambda j: _claim_queued(j, claim, plan))
        if job.execution == claim:
            return _launch(job, plan, claim, svc, deps)
    return _redelivered(job, svc, deps)


def plan_job(job: Job, settings: Settings, prober: Prober) -> ChunkPlan:
    t = settings.transcription
    model = job.options.model or t.default_model
    if model not in t.models:
        raise InvalidInput(
            f"unknown model {model!r}; available: {', '.join(sorted(t.models))}",
            code="unknown_model",
        )
    language = job.options.language
    if model.endswith(".en") and language not in (None, "en"):
        raise InvalidInput(
            f"model {model} transcribes English only; the job asks for {language!r}",
            code="model_language_mismatch",
        )
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
        language=language,
        duration_s=info.duration_s,
        chunk_seconds=settings.limits.chunk_seconds,
        overlap_s=t.chunk_overlap_s,
    )


def choose_tier(priority: Priority, settings: Settings) -> tuple[str, int]:
    """The Cloud Run job for a priority, and the task timeout that job allows."""
    t = settings.transcription
    tier = Tier.GPU if priority == Priority.HIGH else t.batch_tier
    if tier == Tier.GPU:
        return settings.run_jobs.transcribe_gpu, t.gpu_task_timeout_s
    return settings.run_jobs.transcribe_cpu, t.cpu_task_timeout_s


# Claims -------------------------------------------------------------------------------------


def _new_claim() -> str:
    return f"{CLAIM_PREFIX}{uuid.uuid4().hex}/{int(time.time())}"


def _claim_age_s(execution: str) -> float:
    try:
        return time.time() - int(execution.rsplit("/", 1)[1])
    except (IndexError, ValueError):
        return float("inf")


def _claim_queued(job: Job, claim: str, plan: ChunkPlan) -> Job | None:
    if job.state != JobState.QUEUED:
        return None
    dispatched, _ = advance(job, JobState.DISPATCHED, execution=claim)
    source = dispatched.source.model_copy(update={"duration_s": plan.duration_s})
    return dispatched.model_copy(update={"source": source})


def _take_over(job: Job, seen: str | None, claim: str) -> Job | None:
    """Replace a dead claim or execution ``seen`` with our claim, if nobody else did first."""
    if job.state != JobState.DISPATCHED or job.execution != seen:
        return None
    return job.model_copy(update={"execution": claim})


def _replace_claim(job: Job, claim: str, value: str | None) -> Job | None:
    if job.execution != claim:
        return None
    return job.model_copy(update={"execution": value})


# Launching ----------------------------------------------------------------------------------


def _launch(job: Job, plan: ChunkPlan, claim: str, svc: Services, deps: DispatchDeps) -> Outcome:
    run_job, timeout_s = choose_tier(job.options.priority, svc.settings)
    try:
        env = plan.to_env()
        if traceparent := current_traceparent():
            env[TRACEPARENT_ENV] = traceparent
        execution = deps.launcher.launch(
            run_job, env=env, task_count=plan.chunk_count, timeout_s=timeout_s
        )
    except Exception:
        # Expire our claim at once so the redelivery launches without waiting for the lease.
        expired = f"{claim.rsplit('/', 1)[0]}/0"
        svc.jobs.update(job.job_id, lambda j: _replace_claim(j, claim, expired))
        raise
    stored = svc.jobs.update(job.job_id, lambda j: _replace_claim(j, claim, execution))
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
    return Outcome.LAUNCHED


def _redelivered(job: Job, svc: Services, deps: DispatchDeps) -> Outcome:
    if job.state != JobState.DISPATCHED:
        log.info("job is %s; nothing to dispatch", job.state, extra={"event": "duplicate"})
        return Outcome.NOT_NEEDED
    current = job.execution
    if current is not None and current.startswith(CLAIM_PREFIX):
        if _claim_age_s(current) < svc.settings.transcription.launch_lease_s:
            raise Busy(f"job {job.job_id}: another delivery is launching its execution")
    elif current is not None and deps.launcher.is_alive(current):
        log.info("execution %s is alive; not launching another", current)
        return Outcome.ALREADY_RUNNING
    # The launcher died, or the execution ended without moving the job on: launch again.
    try:
        plan = plan_job(job, svc.settings, deps.prober)
    except InvalidInput as exc:
        return _reject(job, exc, svc)
    claim = _new_claim()
    stored = svc.jobs.update(job.job_id, lambda j: _take_over(j, current, claim))
    if stored.execution != claim:
        raise Busy(f"job {job.job_id}: another delivery took over its launch")
    log.warning("relaunching job %s (was %s)", job.job_id, current)
    return _launch(stored, plan, claim, svc, deps)


def _reject(job: Job, exc: InvalidInput, svc: Services) -> Outcome:
    error = JobError(code=exc.code, message=exc.message)
    svc.jobs.transition(job.job_id, JobState.FAILED, error=error)
    log.warning("job rejected: %s", exc.message, extra={"code": exc.code})
    return Outcome.REJECTED
