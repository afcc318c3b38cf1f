"""Pull workers with in-memory fakes: which queues a tier serves and in what order, how many
workers a backlog needs, the pool lease, the worker loop (priority, deadline, idle, crashes,
cancelled jobs, claims) and dispatch to the queues (once under redelivery, scaled, capped).
The real thing runs in tests/integration/test_transcription_flow.py and test_work_queue.py."""

from __future__ import annotations

from datetime import timedelta
from typing import cast

import pytest

from common.config.settings import Settings, Tier
from common.domain.errors import ExecutorUnavailable
from common.domain.jobs import Job, JobState, Priority, utcnow
from common.domain.lease import Lease
from common.domain.messages import ChunkWork, TranscriptionRequested
from common.domain.ports import WorkItem
from common.domain.scaling import (
    WORKER_ENV,
    WorkerEnv,
    WorkerPool,
    decision_done,
    decision_taken,
    priorities_served,
    to_launch,
    work_subscription,
    workers_needed,
)
from common.domain.transcription_plan import ChunkPlan, work_prefix
from functions.bootstrap import Services
from functions.dispatch import DispatchOutcome, DispatchServices, handle_dispatch
from functions.dispatch_work import WorkDispatch, ensure_workers
from functions.sweep import SweepRequest, sweep
from run_jobs.transcribe.audio_cache import AudioCache
from run_jobs.transcribe.claims import claim_uri
from run_jobs.transcribe.task import TaskEnv, TaskOutcome, TranscribeServices
from run_jobs.transcribe.worker import work
from tests.fakes import (
    Clock,
    FakeLauncher,
    FakeProber,
    MemoryBlobStore,
    MemoryJobStore,
    MemoryPoolStore,
    MemoryWorkQueue,
    RecordingPublisher,
    make_plan,
    new_job,
    settings,
)

# Scaling arithmetic ------------------------------------------------------------------------


def test_workers_needed_is_one_per_backlog_share_capped_and_never_negative() -> None:
    assert workers_needed(0, cap=4, per_worker=2) == 0
    assert workers_needed(1, cap=4, per_worker=2) == 1  # any backlog gets a worker
    assert workers_needed(5, cap=4, per_worker=2) == 3
    assert workers_needed(50, cap=4, per_worker=2) == 4
    assert workers_needed(3, cap=0, per_worker=1) == 0  # a tier switched off
    assert to_launch(5, 1, cap=4, per_worker=2) == 2
    assert to_launch(5, 7, cap=4, per_worker=2) == 0  # too many: they leave when idle


def test_high_priority_is_the_gpu_tier_s_and_always_asked_first() -> None:
    cpu_batch = settings()
    assert priorities_served(Tier.GPU, cpu_batch) == (Priority.HIGH,)
    assert priorities_served(Tier.CPU, cpu_batch) == (Priority.NORMAL, Priority.LOW)
    gpu_batch = settings(executions={"batch_tier": "gpu"})
    assert priorities_served(Tier.GPU, gpu_batch) == (Priority.HIGH, Priority.NORMAL, Priority.LOW)
    assert priorities_served(Tier.CPU, gpu_batch) == ()


def test_one_decision_at_a_time_and_a_recheck_for_work_queued_meanwhile() -> None:
    now = utcnow()
    pool = decision_taken(WorkerPool(tier="cpu"), "a", now, 30)
    assert pool is not None and pool.lease is not None and pool.lease.holder == "a"
    asked = decision_taken(pool, "b", now, 30)  # b finds a deciding: a must look again
    assert asked is not None and asked.recheck and asked.lease == pool.lease
    assert decision_taken(asked, "c", now, 30) is None  # already asked
    again = decision_done(asked, "a", 2, now)  # a keeps the lease for one more round
    assert again is not None and not again.recheck and again.lease == pool.lease
    released = decision_done(again, "a", 1, now)
    assert released is not None and released.lease is None and released.launched == 3
    stale = WorkerPool(
        tier="cpu", lease=Lease(holder="dead", taken_at=now - timedelta(hours=1), ttl_s=30)
    )
    taken = decision_taken(stale, "d", now, 30)
    assert taken is not None and taken.lease is not None and taken.lease.holder == "d"
    assert decision_done(taken, "dead", 1, now) is None  # the old holder's lease is gone


# The worker loop ---------------------------------------------------------------------------


def _worker(s: Settings, *jobs: Job) -> tuple[TranscribeServices, MemoryJobStore, MemoryBlobStore]:
    store, blobs = MemoryJobStore(*jobs), MemoryBlobStore()
    w = TranscribeServices(
        settings=s,
        jobs=store,
        blobs=blobs,
        publisher=RecordingPublisher(),
        audio=cast(AudioCache, None),  # the fake run_chunk reads no audio
    )
    return w, store, blobs


def _chunk(job: Job, index: int = 0, chunks: int = 1) -> ChunkWork:
    plan = make_plan(1200.0 * chunks, 1200, job_id=job.job_id)
    return ChunkWork(job_id=job.job_id, index=index, plan=plan)


def _dispatched(job_id: str, tier: str = "cpu", chunks: int = 1) -> Job:
    job = new_job(job_id=job_id)
    job = job.model_copy(update={"state": JobState.DISPATCHED}).coordinated(
        work_tier=tier, work_chunks=chunks, work_plan="{}"
    )
    return job


class Runs:
    """A stand-in for the model run: records each call; ``crash`` makes the next ones crash;
    each takes ``seconds`` of the clock."""

    def __init__(self, clock: Clock, seconds: float = 10.0) -> None:
        self.clock, self.seconds = clock, seconds
        self.calls: list[tuple[str, int, bool]] = []
        self.crash = 0

    def __call__(self, env: TaskEnv, traceparent: str | None, last: bool) -> TaskOutcome | None:
        self.calls.append((env.plan.job_id, env.index, last))
        self.clock.advance(self.seconds)
        if self.crash:
            self.crash -= 1
            return None
        return TaskOutcome.CHUNK_DONE


def _run(
    s: Settings,
    queue: MemoryWorkQueue,
    w: TranscribeServices,
    runs: Runs,
    clock: Clock,
    **env: object,
):  # type: ignore[no-untyped-def]
    worker_env = WorkerEnv(**{"tier": Tier.CPU, "timeout_s": 3600.0, **env})  # type: ignore[arg-type]
    return work(worker_env, "me", w, queue, runs, clock=clock, sleep=clock.sleep)


def test_high_priority_chunks_are_taken_before_a_batch_backlog() -> None:
    s = settings(executions={"batch_tier": "gpu"}, workers={"idle_s": 0})
    jobs = [_dispatched(f"j-{i}", "gpu") for i in range(4)]
    w, _, _ = _worker(s, *jobs)
    queue, clock = MemoryWorkQueue(), Clock()
    for job in jobs[:3]:
        queue.put(work_subscription(Priority.LOW, s), _chunk(job))
    queue.put(work_subscription(Priority.HIGH, s), _chunk(jobs[3]))
    runs = Runs(clock)

    report = _run(s, queue, w, runs, clock, tier=Tier.GPU)

    assert [c[0] for c in runs.calls] == ["j-3", "j-0", "j-1", "j-2"]
    assert report.chunks == 4 and len(queue.acked) == 4 and report.stopped == "idle"


def test_no_chunk_is_started_inside_the_reserve_before_the_task_timeout() -> None:
    s = settings(workers={"reserve_s": 300, "idle_s": 0})
    jobs = [_dispatched(f"j-{i}") for i in range(5)]
    w, _, _ = _worker(s, *jobs)
    queue, clock = MemoryWorkQueue(), Clock()
    for job in jobs:
        queue.put(work_subscription(Priority.NORMAL, s), _chunk(job))
    runs = Runs(clock, seconds=200)

    report = _run(s, queue, w, runs, clock, timeout_s=1000)

    # Chunks start at 0, 200, 400 and 600 s with 1000..400 s left; at 800 s only 200 s are
    # left, inside the reserve: the fifth stays queued for another worker.
    assert len(runs.calls) == 4 and report.stopped == "deadline"
    assert len(queue.queues[work_subscription(Priority.NORMAL, s)]) == 1


def test_an_idle_worker_waits_out_a_dead_worker_s_ack_deadline_while_chunks_are_unfinished() -> (
    None
):
    s = settings(
        workers={"idle_s": 5, "ack_deadline_s": 10, "poll_s": 1}, delivery={"max_backoff_s": 5}
    )
    busy = _dispatched("j-busy")  # its chunk is in another (maybe dead) worker's hands
    w, store, _ = _worker(s, busy)
    queue, clock = MemoryWorkQueue(), Clock()

    report = _run(s, queue, w, Runs(clock), clock)
    assert report.stopped == "idle" and clock() >= 5 + 10 + 5  # idle + ack deadline + backoff

    store.jobs.pop("j-busy")
    clock2 = Clock()
    assert _run(s, queue, w, Runs(clock2), clock2).stopped == "idle" and clock2() < 6


def test_a_crash_hands_the_chunk_back_and_the_last_delivery_fails_the_job_for_good() -> None:
    s = settings(workers={"idle_s": 0}, delivery={"max_delivery_attempts": 5})
    job = _dispatched("j-1")
    w, _, _ = _worker(s, job)
    queue, clock = MemoryWorkQueue(), Clock()
    queue.put(work_subscription(Priority.NORMAL, s), _chunk(job), attempt=4)
    runs = Runs(clock)
    runs.crash = 2

    report = _run(s, queue, w, runs, clock)

    # Delivery 4 crashed and went back (not acked); delivery 5 is the last: run with last=True
    # (run_one then fails the job with the error) and acknowledged, not dead-lettered silently.
    assert runs.calls == [("j-1", 0, False), ("j-1", 0, True)]
    assert queue.extended == [("m-1", 0)]
    assert report.crashed == 1 and report.outcomes == {"failed_for_good": 1}
    assert [i.delivery_attempt for i in queue.acked] == [5]


def test_chunks_of_a_deleted_or_final_job_are_cancelled_without_a_model_run() -> None:
    s = settings(workers={"idle_s": 0})
    done = _dispatched("j-done").model_copy(update={"state": JobState.FAILED})
    w, _, blobs = _worker(s, done)
    queue, clock = MemoryWorkQueue(), Clock()
    sub = work_subscription(Priority.NORMAL, s)
    queue.put(sub, _chunk(_dispatched("j-deleted")))
    queue.put(sub, _chunk(done))
    queue.put(sub, None)  # a body no worker can use
    runs = Runs(clock)

    report = _run(s, queue, w, runs, clock)

    assert runs.calls == [] and len(queue.acked) == 3
    assert report.outcomes == {"cancelled": 2}
    assert blobs.objects == {}  # not even a claim was written for them


def test_a_chunk_another_live_worker_holds_is_deferred_and_a_stale_claim_taken_over() -> None:
    s = settings(workers={"idle_s": 0})
    job = _dispatched("j-1")
    w, _, blobs = _worker(s, job)
    chunk = _chunk(job)
    uri = claim_uri(work_prefix(s, chunk.plan), 0)
    held = Lease(holder="other", taken_at=utcnow(), ttl_s=600)
    blobs.write_bytes(uri, held.model_dump_json().encode(), content_type="application/json")
    queue, clock = MemoryWorkQueue(), Clock()
    queue.put(work_subscription(Priority.NORMAL, s), chunk)
    runs = Runs(clock)

    # The fresh claim defers it; while it is handed back the other worker dies (its claim
    # lapses), and at the next delivery this worker takes the chunk over.
    hand_back = queue.extend

    def hand_back_and_lapse(item: WorkItem, seconds: int) -> None:
        hand_back(item, seconds)
        stale = held.model_copy(update={"taken_at": utcnow() - timedelta(hours=1)})
        blobs.write_bytes(uri, stale.model_dump_json().encode(), content_type="application/json")

    queue.extend = hand_back_and_lapse  # type: ignore[method-assign]
    report = _run(s, queue, w, runs, clock, timeout_s=3600.0)

    # Handed back until the claim would lapse, at most one claim lifetime (the ack deadline).
    assert queue.extended[0] == ("m-1", s.workers.ack_deadline_s) and report.deferred == 1
    assert runs.calls == [("j-1", 0, False)]
    assert Lease.model_validate_json(blobs.read_bytes(uri)).holder == "me"


def test_a_worker_stays_until_a_chunk_it_handed_back_has_come_back() -> None:
    # Nothing else keeps it: no idle time and no backlog counted for its tier (the job is
    # the GPU tier's), so only the handed-back chunk is why it waits.
    s = settings(
        workers={"idle_s": 0, "ack_deadline_s": 10, "poll_s": 1}, delivery={"max_backoff_s": 5}
    )
    job = _dispatched("j-1", tier="gpu")
    w, _, blobs = _worker(s, job)
    chunk = _chunk(job)
    uri = claim_uri(work_prefix(s, chunk.plan), 0)
    taken = utcnow() - timedelta(seconds=5)  # the holder died 5 s into its 10 s claim
    dead = Lease(holder="dead", taken_at=taken, ttl_s=10)
    blobs.write_bytes(uri, dead.model_dump_json().encode(), content_type="application/json")
    clock = Clock()
    queue = MemoryWorkQueue(clock)
    queue.put(work_subscription(Priority.NORMAL, s), chunk)
    runs = Runs(clock)
    hand_back = queue.extend

    def hand_back_and_lapse(item: WorkItem, seconds: int) -> None:
        hand_back(item, seconds)  # the fake clock moves, the claim's real time does not:
        stale = dead.model_copy(update={"taken_at": utcnow() - timedelta(hours=1)})
        blobs.write_bytes(uri, stale.model_dump_json().encode(), content_type="application/json")

    queue.extend = hand_back_and_lapse  # type: ignore[method-assign]

    report = _run(s, queue, w, runs, clock)

    (_, defer_s), *_ = queue.extended
    assert defer_s in (5, 6)  # back when the dead holder's claim lapses (5 s left), not later
    assert runs.calls == [("j-1", 0, False)] and report.stopped == "idle"
    assert clock() >= defer_s


def test_a_chunk_with_a_stored_result_runs_without_a_claim() -> None:
    s = settings(workers={"idle_s": 0})
    job = _dispatched("j-1")
    w, _, blobs = _worker(s, job)
    chunk = _chunk(job)
    prefix = work_prefix(s, chunk.plan)
    blobs.write_bytes(f"{prefix}chunk-0000.json", b"{}", content_type="application/json")
    queue, clock = MemoryWorkQueue(), Clock()
    queue.put(work_subscription(Priority.NORMAL, s), chunk)
    runs = Runs(clock)

    _run(s, queue, w, runs, clock)

    # run_task finds the result and only checks for the merge; nothing to hold off.
    assert runs.calls == [("j-1", 0, False)]
    assert claim_uri(prefix, 0) not in blobs.objects


# Dispatch to the queues --------------------------------------------------------------------


def _world(
    job: Job, duration_s: float = 3000.0, **groups: dict[str, object]
) -> tuple[Services, DispatchServices, FakeLauncher, RecordingPublisher, MemoryPoolStore]:
    publisher = RecordingPublisher()
    svc = Services(
        settings=settings(**groups),
        jobs=MemoryJobStore(job),
        publisher=publisher,
        blobs=MemoryBlobStore(),
    )
    launcher, pools = FakeLauncher(), MemoryPoolStore()
    deps = DispatchServices(
        launcher=launcher,
        prober=FakeProber(duration_s=duration_s),
        work=WorkDispatch(launcher=launcher, pools=pools),
    )
    return svc, deps, launcher, publisher, pools


def test_a_job_s_chunks_are_queued_once_and_workers_launched_for_the_backlog() -> None:
    job = new_job()
    svc, deps, launcher, publisher, _ = _world(job)  # 50 min: 3 chunks of 20 min
    request = TranscriptionRequested(job_id=job.job_id)

    assert handle_dispatch(request, svc, deps) == DispatchOutcome.QUEUED
    for _ in range(3):  # redeliveries
        assert handle_dispatch(request, svc, deps) == DispatchOutcome.ALREADY_QUEUED

    stored = svc.jobs.get(job.job_id)
    assert stored.state == JobState.DISPATCHED and stored.execution is None
    assert (stored.coordination.work_tier, stored.coordination.work_chunks) == ("cpu", 3)
    assert [(t, d["index"]) for t, d, _ in publisher.published] == [
        ("transcription-work-normal", 0),
        ("transcription-work-normal", 1),
        ("transcription-work-normal", 2),
    ]
    assert all(d["job_id"] == job.job_id for _, d, _ in publisher.published)
    # 3 chunks at 2 per worker: 2 workers, launched once, as one execution of the CPU job.
    [launch] = launcher.launches
    assert launch["job"] == "transcribe-cpu" and launch["task_count"] == 2
    assert WorkerEnv.model_validate_json(launch["env"][WORKER_ENV]).tier == Tier.CPU


def test_high_priority_goes_to_its_own_queue_and_the_gpu_workers_within_the_cap() -> None:
    job = new_job(priority="high")
    svc, deps, launcher, publisher, _ = _world(job, 6000.0, workers={"max_gpu": 1})

    handle_dispatch(TranscriptionRequested(job_id=job.job_id), svc, deps)

    assert {t for t, _, _ in publisher.published} == {"transcription-work-high"}
    assert [(x["job"], x["task_count"]) for x in launcher.launches] == [("transcribe-gpu", 1)]


def test_the_sweep_s_resend_queues_only_unfinished_chunks_again() -> None:
    job = new_job()
    svc, deps, _, publisher, _ = _world(job)
    handle_dispatch(TranscriptionRequested(job_id=job.job_id), svc, deps)
    plan = ChunkPlan.model_validate_json(svc.jobs.get(job.job_id).coordination.work_plan or "")
    done = f"{work_prefix(svc.settings, plan)}chunk-0001.json"
    svc.blobs.write_bytes(done, b"{}", content_type="application/json")
    publisher.published.clear()

    outcome = handle_dispatch(TranscriptionRequested(job_id=job.job_id, resend=True), svc, deps)

    assert outcome == DispatchOutcome.QUEUED
    assert [d["index"] for _, d, _ in publisher.published] == [0, 2]
    assert svc.jobs.get(job.job_id).coordination.work_requeues == 1


def test_a_decision_under_way_is_asked_to_look_again_rather_than_launch_twice() -> None:
    job = new_job()
    svc, deps, launcher, _, pools = _world(job)
    pools.pools["cpu"] = WorkerPool(
        tier="cpu", lease=Lease(holder="other", taken_at=utcnow(), ttl_s=30)
    )

    handle_dispatch(TranscriptionRequested(job_id=job.job_id), svc, deps)

    assert launcher.launches == [] and pools.pools["cpu"].recheck
    assert deps.work is not None
    # Once the lease is free, the backlog is met: the next decision launches what it needs.
    pools.pools["cpu"] = WorkerPool(tier="cpu")
    assert ensure_workers(Tier.CPU, svc, deps.work) == 2
    assert ensure_workers(Tier.CPU, svc, deps.work) == 0  # already running
    assert pools.pools["cpu"].lease is None and pools.pools["cpu"].launched == 2


def test_a_failed_launch_lets_go_of_the_pool_lease() -> None:
    job = new_job()
    svc, deps, launcher, _, pools = _world(job)
    launcher.fail_next = True

    with pytest.raises(Exception, match="503"):
        handle_dispatch(TranscriptionRequested(job_id=job.job_id), svc, deps)

    assert pools.pools["cpu"].lease is None  # the redelivery decides at once
    assert handle_dispatch(TranscriptionRequested(job_id=job.job_id), svc, deps) == (
        DispatchOutcome.ALREADY_QUEUED
    )
    assert [x["task_count"] for x in launcher.launches] == [2]


def test_the_sweep_reports_cloud_run_out_rather_than_undoing_its_requeue() -> None:
    job = new_job()
    svc, deps, launcher, publisher, pools = _world(job)
    handle_dispatch(TranscriptionRequested(job_id=job.job_id), svc, deps)
    launcher.alive.clear()  # the workers died; the chunks' messages were lost with them
    publisher.published.clear()

    def out(job: str, *, within_s: float) -> int:
        raise ExecutorUnavailable("Cloud Run said 503")

    launcher.active_tasks = out  # type: ignore[method-assign]
    assert deps.work is not None

    report = sweep(svc, SweepRequest(older_than_s=0, max_objects=0), work=deps.work)

    assert report.requests == [job.job_id]  # the resend stands: dispatch requeues it
    assert report.workers_errors == {"cpu": "Cloud Run said 503"}
    assert report.workers_launched == {"gpu": 0}  # nothing queued there: nothing listed
    assert pools.pools["cpu"].lease is None
