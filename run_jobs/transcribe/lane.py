"""Draining a batch lane: after its first job, a lane execution takes the lane's waiting jobs
one at a time with the model it has loaded (the protocol is in ``common/domain/lanes.py``).

Resumable like a single task: a job this execution claimed and did not finish (the task
crashed) is taken up first by the retried task, and every job runs through ``run_task``, which
skips finished chunks and never moves a job backwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

from common.domain.jobs import Job, utcnow
from common.domain.lanes import Lane, LaneEnv, claimed_by, closed, is_waiting, registered
from common.domain.ports import LaneStore
from common.domain.transcription_plan import ChunkPlan
from common.obs.logs import get_logger
from run_jobs.transcribe.task import TaskEnv, TranscribeServices

log = get_logger(__name__)

POLL_S = 0.5  # how often a lingering execution looks for new jobs


@dataclass
class DrainReport:
    jobs: list[str] = field(default_factory=list)
    crashed: list[str] = field(default_factory=list)  # failed for good on the last attempt


# Runs one job as a task: returns the task's exit code (0 done, 1 crashed).
RunOne = Callable[[TaskEnv, str | None], int]


def execution_name(w: TranscribeServices, job: str, execution: str) -> str:
    """The full name Cloud Run gives an execution, from the task's ``CLOUD_RUN_*`` values."""
    s = w.settings
    return f"projects/{s.project}/locations/{s.region}/jobs/{job}/executions/{execution}"


def drain(
    lane: LaneEnv,
    first: TaskEnv,
    me: str,
    w: TranscribeServices,
    lanes: LaneStore,
    run_one: RunOne,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[int, DrainReport]:
    """Take jobs from the lane until it runs dry (after ``linger_s``); returns the exit code
    (1 when a job crashed and Cloud Run should retry this task) and what was done."""
    report = DrainReport()
    seen = {first.plan.job_id}
    lanes.update(lane.key, lambda current: registered(current, me, utcnow()))
    started = idle_since = clock()
    accepting = True
    while True:
        # Read the lane before the queue: the close below is valid only if nothing was handed
        # off after this read.
        current = lanes.get(lane.key)
        job = _next(w.jobs.in_lane(lane.key), lane.key, me, seen)
        if job is not None:
            if not _same(job.execution, me):
                claimed = w.jobs.update(job.job_id, lambda j: claimed_by(j, lane.key, me))
                if not _same(claimed.execution, me):
                    continue  # another execution took it first
            seen.add(job.job_id)
            env = TaskEnv(
                plan=ChunkPlan.model_validate_json(job.coordination.batch_plan or ""),
                index=0,
                attempt=first.attempt,
                execution=first.execution,
            )
            code = run_one(env, job.traceparent)
            report.jobs.append(job.job_id)
            if code != 0:
                if first.attempt < w.settings.executions.max_retries:
                    return code, report  # Cloud Run retries the task; the retry resumes this job
                report.crashed.append(job.job_id)  # failed for good: go on with the others
            idle_since = clock()
            if accepting and clock() - started >= lane.accept_for_s:
                lanes.update(lane.key, lambda c: closed(c, me, None, utcnow()))
                accepting = False
                log.info("lane %s: closed after %.0f s; draining", lane.key, clock() - started)
            continue
        mine = current.open and _same(current.execution, me)
        if mine and accepting:
            if clock() - idle_since < lane.linger_s:
                sleep(POLL_S)
                continue
            after = lanes.update(lane.key, partial(_close, me=me, seq=current.seq))
            if after.open and after.execution == me:
                continue  # a job was handed off since the read: look again
        log.info(
            "lane %s: %d job(s) after the first, %d crashed",
            lane.key,
            len(report.jobs),
            len(report.crashed),
            extra={"event": "lane_drained", "jobs": len(report.jobs) + 1},
        )
        return (1 if report.crashed else 0), report


def _close(lane: Lane, *, me: str, seq: int) -> Lane | None:
    return closed(lane, me, seq, utcnow())


def _next(jobs: Sequence[Job], lane: str, me: str, seen: set[str]) -> Job | None:
    """Our own unfinished claims first (a retried task resumes them), then the oldest waiting."""
    fresh = [
        j
        for j in jobs
        if j.job_id not in seen and j.coordination.batch_lane == lane and j.coordination.batch_plan
    ]
    for job in fresh:
        if _same(job.execution, me):
            return job
    return next((j for j in fresh if is_waiting(j)), None)


def _same(execution: str | None, me: str) -> bool:
    """Compared by short name: Cloud Run may spell the project of a full name as its number."""
    return execution is not None and execution.rsplit("/", 1)[-1] == me.rsplit("/", 1)[-1]
