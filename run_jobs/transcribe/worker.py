"""A pull worker: one Cloud Run task that loads the model once and transcribes chunk after
chunk from the work queues (``common/domain/scaling.py``), high priority first, until the queues
stay empty for ``Workers.idle_s`` (longer while its tier has unfinished chunks: see
``_done_waiting``) or less than ``Workers.reserve_s`` is left of its task timeout.

Each chunk is handled by ``run_task`` as a one-chunk task would be (it skips a stored result,
merges after the last chunk, never moves a job backwards), so every guarantee of the task
holds here too. Around it:

- the message is kept (its ack deadline extended) and the chunk's claim renewed while the
  model runs; a killed worker stops both, and the chunk goes to another worker;
- a chunk another live worker holds is handed back until that claim would lapse, instead of
  run twice;
- a crash hands the message back (Pub/Sub redelivers after its backoff); on the last
  delivery Pub/Sub allows, the job fails with the error instead of a silent dead letter;
- a worker does not leave while a chunk it handed back is due to come back;
- a chunk of a job that was deleted or is final is acknowledged without running the model,
  which is how DELETE cancels a job's pending chunks.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from common.domain.errors import JobNotFound
from common.domain.jobs import utcnow
from common.domain.ports import WorkItem, WorkQueue
from common.domain.scaling import WorkerEnv, priorities_served, work_subscription
from common.domain.transcription_plan import work_prefix
from common.obs.logs import get_logger
from run_jobs.transcribe.claims import (
    ChunkClaim,
    HeldElsewhere,
    claim_uri,
    renew_claim,
    take_claim,
)
from run_jobs.transcribe.task import TaskEnv, TaskOutcome, TranscribeServices

log = get_logger(__name__)

# Runs one chunk in the job's trace: its outcome, or None if it crashed. The flag says
# whether this is the last delivery (a crash then fails the job for good).
RunChunk = Callable[[TaskEnv, str | None, bool], TaskOutcome | None]


@dataclass
class WorkerReport:
    outcomes: Counter[str] = field(default_factory=Counter)
    deferred: int = 0  # held by another worker: handed back
    crashed: int = 0
    stopped: str = ""  # "idle" or "deadline"

    @property
    def chunks(self) -> int:
        return sum(self.outcomes.values())


def work(
    env: WorkerEnv,
    me: str,
    w: TranscribeServices,
    queue: WorkQueue,
    run_chunk: RunChunk,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> WorkerReport:
    """Take chunks until the queues stay empty or time is nearly up; ``me`` names this worker
    in chunk claims (unique per task attempt)."""
    s = w.settings
    subscriptions = [work_subscription(p, s) for p in priorities_served(env.tier, s)]
    report = WorkerReport()
    started = idle_since = clock()
    due_back = started  # until then a chunk this worker handed back may come back to it
    while True:
        if env.timeout_s - (clock() - started) < s.workers.reserve_s:
            report.stopped = "deadline"
            break
        item = _pull_first(queue, subscriptions)
        if item is None:
            if clock() >= due_back and _done_waiting(clock() - idle_since, env, w):
                report.stopped = "idle"
                break
            sleep(s.workers.poll_s)
            continue
        handed_back_s = _handle(item, me, w, queue, run_chunk, report)
        idle_since = clock()
        if handed_back_s is not None:
            # Pub/Sub may add its retry backoff; one more poll to see it.
            wait = handed_back_s + s.delivery.max_backoff_s + s.workers.poll_s
            due_back = max(due_back, idle_since + wait)
    log.info(
        "worker %s: %d chunk(s), %d deferred, %d crashed; stopped (%s) after %.0f s",
        me,
        report.chunks,
        report.deferred,
        report.crashed,
        report.stopped,
        clock() - started,
        extra={"event": "worker_done", "chunks": report.chunks},
    )
    return report


def _done_waiting(idle_s: float, env: WorkerEnv, w: TranscribeServices) -> bool:
    """Idle long enough to leave. While the tier still has unfinished chunks, one may be in
    the hands of a worker that died: Pub/Sub hands it out again only after its ack deadline
    and backoff, so wait that long too (Cloud Run's retry of a killed task is then there to
    take it, instead of leaving an empty queue just before the chunk comes back)."""
    s = w.settings
    if idle_s < s.workers.idle_s:
        return False
    if idle_s >= s.workers.idle_s + s.workers.ack_deadline_s + s.delivery.max_backoff_s:
        return True
    return w.jobs.work_backlog(env.tier.value) == 0


def _pull_first(queue: WorkQueue, subscriptions: Sequence[str]) -> WorkItem | None:
    """The next chunk of the first queue that has one: high priority is always asked first."""
    for subscription in subscriptions:
        item = queue.pull(subscription)
        if item is not None:
            return item
    return None


def _handle(
    item: WorkItem,
    me: str,
    w: TranscribeServices,
    queue: WorkQueue,
    run_chunk: RunChunk,
    report: WorkerReport,
) -> float | None:
    """Run, cancel or hand back one chunk; the seconds until a handed-back one returns."""
    work = item.work
    if work is None:
        queue.ack(item)  # nothing any worker could do with it (logged by the queue)
        return None
    try:
        final = w.jobs.get(work.job_id).state.is_final
    except JobNotFound:
        final = True
    if final:
        # Deleted, failed or done: the chunk is cancelled, and nothing is written for it.
        log.info("chunk %d of job %s: the job is gone or final", work.index, work.job_id)
        report.outcomes["cancelled"] += 1
        queue.ack(item)
        return None
    prefix = work_prefix(w.settings, work.plan)
    claim: ChunkClaim | None = None
    if w.blobs.stat(f"{prefix}chunk-{work.index:04d}.json") is None:
        ttl = w.settings.workers.ack_deadline_s
        taken = take_claim(w.blobs, claim_uri(prefix, work.index), me, utcnow(), ttl)
        if isinstance(taken, HeldElsewhere):
            # Offered again a second after the holder's claim would lapse (a raced claim:
            # in a second), at most one claim lifetime away.
            left = (taken.lease.expires_at - utcnow()).total_seconds() if taken.lease else 0
            defer_s = int(min(left + 1, ttl))
            log.info(
                "chunk %d of job %s is held by another worker: back in %d s",
                work.index,
                work.job_id,
                defer_s,
            )
            queue.extend(item, defer_s)
            report.deferred += 1
            return defer_s
        claim = taken
    env = TaskEnv(
        plan=work.plan, index=work.index, attempt=item.delivery_attempt - 1, execution=None
    )
    last = item.delivery_attempt >= w.settings.delivery.max_delivery_attempts
    with _kept(item, claim, w, queue):
        outcome = run_chunk(env, item.attributes.get("traceparent"), last)
    if outcome is None and not last:
        report.crashed += 1
        queue.extend(item, 0)  # redelivered after the subscription's backoff
        return 0
    report.outcomes[outcome.value if outcome else "failed_for_good"] += 1
    queue.ack(item)
    return None


@contextmanager
def _kept(
    item: WorkItem, claim: ChunkClaim | None, w: TranscribeServices, queue: WorkQueue
) -> Iterator[None]:
    """Extend the message's ack deadline and renew the claim while the body runs."""
    deadline = w.settings.workers.ack_deadline_s
    done = threading.Event()
    held = [claim]

    def keep() -> None:
        while not done.wait(deadline / 3):
            try:
                queue.extend(item, deadline)
                if held[0] is not None:
                    held[0] = renew_claim(w.blobs, held[0], utcnow())
            except Exception as exc:  # a missed renewal is survivable; the next may work
                log.warning("could not keep chunk message %s: %s", item.message_id, exc)

    keeper = threading.Thread(target=keep, name="keep-chunk", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        done.set()
        keeper.join()
