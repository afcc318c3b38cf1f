"""The transcribe job's entry point: ``python -m run_jobs.transcribe`` (one Cloud Run task).

A worker execution (``WORKER_ENV`` set by dispatch, the default mode) pulls chunks from the
work queues until they run dry (``run_jobs/transcribe/worker.py``) and exits 0. Otherwise the
task runs chunk ``CLOUD_RUN_TASK_INDEX`` of the plan in its env (``workers.mode`` per_job):
exit 0 when its work is done or the job failed for good (bad audio: retrying cannot help, so
no retry storm), exit 1 on transient trouble (Cloud Run retries the task, which resumes). A
lane execution (``LANE_ENV``) goes on, after its first job, to drain its batch lane with the
same loaded model (``run_jobs/transcribe/lane.py``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from opentelemetry.trace import StatusCode
from opentelemetry.util.types import AttributeValue

from common.config.settings import get_settings
from common.domain.errors import JobNotFound
from common.domain.lanes import LaneEnv
from common.domain.scaling import WorkerEnv
from common.domain.transcription_plan import TRACEPARENT_ENV
from common.gcp.coordination_store import FirestoreLaneStore
from common.gcp.gcs import GcsBlobStore
from common.gcp.job_store import FirestoreJobStore
from common.gcp.pubsub import PubSubPublisher
from common.gcp.work_queue import PubSubWorkQueue
from common.obs.logs import configure_logging, get_logger
from common.obs.tracing import configure_tracing, is_traceparent, stage
from run_jobs.transcribe.audio_cache import AudioCache
from run_jobs.transcribe.lane import drain, execution_name
from run_jobs.transcribe.task import (
    TaskEnv,
    TaskOutcome,
    TranscribeServices,
    fail_for_good,
    run_task,
)
from run_jobs.transcribe.worker import work

log = get_logger("run_jobs.transcribe")


def build_worker() -> TranscribeServices:
    settings = get_settings()
    blobs = GcsBlobStore(settings.project)
    return TranscribeServices(
        settings=settings,
        jobs=FirestoreJobStore(settings.project, settings.collections.jobs),
        blobs=blobs,
        publisher=PubSubPublisher(settings.project, timeout_s=settings.limits.publish_timeout_s),
        audio=AudioCache(Path(settings.transcription.cache_dir), settings, blobs),
    )


def main() -> int:
    settings = get_settings()
    configure_logging(settings.log_level, settings.project)
    configure_tracing(settings.tracing, "transcribe")
    environ = dict(os.environ)
    worker = build_worker()
    pulling = WorkerEnv.from_env(environ)
    if pulling is not None:
        return _pull(pulling, environ, worker)
    env = TaskEnv.from_environ(environ)
    last = _last_attempt(env, worker)
    code = _exit_code(run_one(env, worker, environ.get(TRACEPARENT_ENV), last=last))
    lane = LaneEnv.from_env(environ)
    if lane is None or env.execution is None or (code != 0 and not last):
        return code
    me = execution_name(worker, environ.get("CLOUD_RUN_JOB", ""), env.execution)
    lanes = FirestoreLaneStore(settings.project, settings.collections.batch_lanes)
    drained, _ = drain(
        lane,
        env,
        me,
        worker,
        lanes,
        lambda e, tp: _exit_code(run_one(e, worker, tp, last=last, in_lane=True)),
    )
    return max(code, drained)


def _pull(env: WorkerEnv, environ: dict[str, str], worker: TranscribeServices) -> int:
    """A pull worker: crashes are the queue's to retry, so the task itself always succeeds
    (a Cloud Run retry would only start an idle worker)."""
    execution = environ.get("CLOUD_RUN_EXECUTION", "local")
    task = environ.get("CLOUD_RUN_TASK_INDEX", "0")
    attempt = environ.get("CLOUD_RUN_TASK_ATTEMPT", "0")
    me = f"{execution}/{task}/{attempt}"
    log.info("worker %s started (%s tier)", me, env.tier, extra={"event": "worker_started"})
    queue = PubSubWorkQueue(worker.settings.project)
    work(env, me, worker, queue, lambda e, tp, last: run_one(e, worker, tp, last=last, pulled=True))
    return 0


def _last_attempt(env: TaskEnv, worker: TranscribeServices) -> bool:
    return env.attempt >= worker.settings.executions.max_retries


def _exit_code(outcome: TaskOutcome | None) -> int:
    return 1 if outcome is None else 0


def run_one(
    env: TaskEnv,
    worker: TranscribeServices,
    traceparent: str | None,
    *,
    last: bool,
    in_lane: bool = False,
    pulled: bool = False,
) -> TaskOutcome | None:
    """One job's share of the work, in a span of the job's own trace; its outcome, or None if
    it crashed (on the ``last`` attempt the job is then failed for good)."""
    attributes: dict[str, AttributeValue] = {
        "task.index": env.index,
        "task.attempt": env.attempt,
        "execution": env.execution or "",
        "model": env.plan.model,
        "lane": in_lane,
        "pulled": pulled,
    }
    with stage(
        "transcribe.task",
        parents=[_job_trace(traceparent, env.plan.job_id, worker)],
        job_id=env.plan.job_id,
        attributes=attributes,
    ) as span:
        log.info(
            "task %d of %d, attempt %d, execution %s",
            env.index,
            env.plan.chunk_count,
            env.attempt,
            env.execution,
            extra={"event": "task_started"},
        )
        try:
            outcome = run_task(env, worker)
        except Exception as exc:
            span.record_exception(exc)
            span.set_status(StatusCode.ERROR, "task_crashed")
            log.exception("task crashed", extra={"code": "task_crashed"})
            if last:
                fail_for_good(env, worker, exc)
            return None
        span.set_attribute("outcome", outcome.value)
        log.info("task done: %s", outcome.value, extra={"event": "task_done"})
        return outcome


def _job_trace(traceparent: str | None, job_id: str, worker: TranscribeServices) -> str | None:
    """The execution's ``TRACEPARENT`` or, when it has none (launched by hand), the job's."""
    if is_traceparent(traceparent):
        return traceparent
    try:
        return worker.jobs.get(job_id).traceparent
    except JobNotFound:
        return None


if __name__ == "__main__":
    sys.exit(main())
