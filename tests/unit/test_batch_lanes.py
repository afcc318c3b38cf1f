"""Batch lanes with in-memory fakes: short jobs share executions, no job is left waiting, and a
lane execution drains, lingers, closes and resumes (the real stack: test_transcription_flow)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import cast

import pytest

from common.domain.errors import ExecutorUnavailable
from common.domain.jobs import Job, JobState, Priority, utcnow
from common.domain.lanes import (
    LANE_ENV,
    Lane,
    LaneEnv,
    accepts,
    closed,
    handed_off,
    is_waiting,
    opened,
    registered,
)
from common.domain.ports import Publisher
from common.domain.transcription_plan import PLAN_ENV, ChunkPlan
from functions.bootstrap import Services
from functions.dispatch import DispatchOutcome, DispatchServices, handle_dispatch
from run_jobs.transcribe.lane import DrainReport, drain
from run_jobs.transcribe.task import TaskEnv, TranscribeServices
from tests.fakes import (
    Clock,
    FakeLauncher,
    FakeProber,
    MemoryBlobStore,
    MemoryJobStore,
    MemoryLaneStore,
    new_job,
    settings,
)
from tests.unit.test_dispatch import _request

# One lane for every job, so the tests need not know which shard a job id falls in.
ONE_LANE = {"count": 1}


def _world(
    *jobs: Job, **lanes: object
) -> tuple[Services, DispatchServices, FakeLauncher, MemoryLaneStore]:
    svc = Services(
        settings=settings(batch_lanes={**ONE_LANE, **lanes}),
        jobs=MemoryJobStore(*jobs),
        publisher=cast(Publisher, None),
        blobs=MemoryBlobStore(),
    )
    launcher, lanes = FakeLauncher(), MemoryLaneStore()
    return (
        svc,
        DispatchServices(launcher=launcher, prober=FakeProber(), lanes=lanes),
        launcher,
        lanes,
    )


def _jobs(n: int, **options: object) -> list[Job]:
    return [new_job(f"j-{i}", f"gs://test-inbox/uploads/{i}.wav", **options) for i in range(n)]


# The lane as a state machine ----------------------------------------------------------------


def test_a_lane_accepts_only_while_open_alive_and_not_full() -> None:
    now = utcnow()
    lane = Lane(key="k")

    def yes(_: str) -> bool:
        return True

    def no(_: str) -> bool:
        return False

    def check(lane: Lane, alive: Callable[[str], bool] = yes) -> bool:
        return accepts(lane, max_jobs=2, alive=alive, now=now)

    assert not check(lane)  # closed
    starting = opened(lane, "claim", now, lease_s=60)
    assert check(starting)  # its execution is being launched
    assert not check(opened(lane, "claim", now - timedelta(seconds=61), lease_s=60))  # died
    running = registered(starting, "ex-1", now)
    assert running is not None and running.pending is None
    assert check(running) and not check(running, no)  # a dead execution takes nothing
    assert not check(handed_off(running, now))  # full: 2 jobs
    assert closed(running, "ex-2", None, now) is None  # only its own execution closes it
    assert closed(running, "ex-1", running.seq - 1, now) is None  # a hand-off since the read
    shut = closed(running, "ex-1", running.seq, now)
    assert shut is not None and not check(shut)


# dispatch -----------------------------------------------------------------------------------


def test_short_jobs_share_one_execution() -> None:
    jobs = _jobs(3)
    svc, deps, launcher, lanes = _world(*jobs)

    outcomes = [handle_dispatch(_request(j), svc, deps) for j in jobs]

    assert outcomes == [DispatchOutcome.LAUNCHED, DispatchOutcome.BATCHED, DispatchOutcome.BATCHED]
    [launch] = launcher.launches
    assert ChunkPlan.model_validate_json(launch["env"][PLAN_ENV]).job_id == "j-0"
    lane_env = LaneEnv.model_validate_json(launch["env"][LANE_ENV])
    assert lane_env.linger_s == svc.settings.batch_lanes.linger_s
    first, *waiting = (svc.jobs.get(j.job_id) for j in jobs)
    assert first.execution is not None and not is_waiting(first)
    assert all(is_waiting(j) and j.coordination.batch_lane == lane_env.key for j in waiting)
    assert all(
        ChunkPlan.model_validate_json(j.coordination.batch_plan or "").job_id == j.job_id
        for j in waiting
    )
    lane = lanes.get(lane_env.key)
    assert (lane.open, lane.execution, lane.handed) == (True, first.execution, 3)


def test_a_full_lane_opens_another_execution() -> None:
    jobs = _jobs(5)
    svc, deps, launcher, _ = _world(*jobs, max_jobs=2)

    outcomes = [handle_dispatch(_request(j), svc, deps) for j in jobs]

    assert outcomes == [DispatchOutcome.LAUNCHED, DispatchOutcome.BATCHED] * 2 + [
        DispatchOutcome.LAUNCHED
    ]
    assert len(launcher.launches) == 3


def test_a_dead_lane_execution_takes_no_more_jobs() -> None:
    jobs = _jobs(3)
    svc, deps, launcher, _ = _world(*jobs)
    handle_dispatch(_request(jobs[0]), svc, deps)
    handle_dispatch(_request(jobs[1]), svc, deps)
    launcher.alive.clear()  # the execution ended (or died) without taking job 1

    assert handle_dispatch(_request(jobs[2]), svc, deps) == DispatchOutcome.LAUNCHED
    # The waiting job's redelivery (or the sweep's message) finds the new execution alive.
    assert handle_dispatch(_request(jobs[1]), svc, deps) == DispatchOutcome.BATCHED
    assert len(launcher.launches) == 2


def test_a_failed_launch_closes_the_lane_and_the_redelivery_launches() -> None:
    jobs = _jobs(2)
    svc, deps, launcher, lanes = _world(*jobs)
    launcher.fail_next = True

    with pytest.raises(ExecutorUnavailable):
        handle_dispatch(_request(jobs[0]), svc, deps)
    assert not any(lane.open for lane in lanes.lanes.values())
    assert is_waiting(svc.jobs.get("j-0"))  # nothing half-done: it waits for its redelivery

    assert handle_dispatch(_request(jobs[0]), svc, deps) == DispatchOutcome.LAUNCHED
    assert handle_dispatch(_request(jobs[1]), svc, deps) == DispatchOutcome.BATCHED


def test_redeliveries_of_batched_jobs_launch_nothing() -> None:
    jobs = _jobs(2)
    svc, deps, launcher, _ = _world(*jobs)
    for job in jobs * 3:
        handle_dispatch(_request(job), svc, deps)
    assert len(launcher.launches) == 1


@pytest.mark.parametrize(
    ("job", "lanes"),
    [
        (new_job(priority=Priority.HIGH), {}),  # high priority never waits behind others
        (new_job(), {"short_max_s": 0}),  # lanes off
        (new_job(), {"short_max_s": 10}),  # 30 s is not short here
    ],
)
def test_high_priority_long_or_lanes_off_get_their_own_execution(
    job: Job, lanes: dict[str, object]
) -> None:
    svc, deps, launcher, store = _world(job, **lanes)
    assert handle_dispatch(_request(job), svc, deps) == DispatchOutcome.LAUNCHED
    assert LANE_ENV not in launcher.launches[0]["env"]
    assert svc.jobs.get(job.job_id).coordination.batch_lane is None and not store.lanes


# The lane execution -------------------------------------------------------------------------


ME = "projects/audionotes-test/locations/us-central1/jobs/transcribe-cpu/executions/ex-1"


def _lane_world(
    n: int,
) -> tuple[Services, DispatchServices, FakeLauncher, MemoryLaneStore, TaskEnv]:
    """n short jobs dispatched into one lane; the first is the execution's own."""
    jobs = _jobs(n)
    svc, deps, launcher, lanes = _world(*jobs)
    # The launcher names executions after the first: give the lane's execution our name.
    launcher.launch = lambda job, **kw: (launcher.alive.add(ME), ME)[1]  # type: ignore[method-assign]
    for job in jobs:
        handle_dispatch(_request(job), svc, deps)
    first = svc.jobs.get("j-0")
    plan = ChunkPlan.model_validate_json(first.coordination.batch_plan or "")
    return svc, deps, launcher, lanes, TaskEnv(plan=plan, index=0, attempt=0, execution="ex-1")


def _worker(svc: Services) -> TranscribeServices:
    return TranscribeServices(
        settings=svc.settings,
        jobs=svc.jobs,
        blobs=svc.blobs,
        publisher=svc.publisher,
        audio=None,  # type: ignore[arg-type]
    )


def _transcribe(svc: Services, ran: list[str], crash: set[str] | None = None):  # type: ignore[no-untyped-def]
    def run_one(env: TaskEnv, traceparent: str | None) -> int:
        job_id = env.plan.job_id
        assert svc.jobs.get(job_id).execution == ME  # claimed before it runs
        ran.append(job_id)
        if crash and job_id in crash:
            crash.discard(job_id)
            svc.jobs.transition(job_id, JobState.TRANSCRIBING)
            return 1
        svc.jobs.transition(job_id, JobState.TRANSCRIBED)
        return 0

    return run_one


def _lane_of(svc: Services) -> LaneEnv:
    job = svc.jobs.get("j-0")
    return LaneEnv(key=job.coordination.batch_lane or "", linger_s=2.0, accept_for_s=3600)


def _drain(
    svc: Services,
    lanes: MemoryLaneStore,
    task: TaskEnv,
    run_one: Callable[[TaskEnv, str | None], int],
    clock: Clock,
    lane: LaneEnv | None = None,
) -> tuple[int, DrainReport]:
    return drain(
        lane or _lane_of(svc),
        task,
        ME,
        _worker(svc),
        lanes,
        run_one,
        clock=clock,
        sleep=clock.sleep,
    )


def test_a_lane_execution_drains_its_queue_lingers_and_closes() -> None:
    svc, deps, _, lanes, first = _lane_world(3)
    svc.jobs.transition("j-0", JobState.TRANSCRIBED)  # the first job, done by run_task
    ran: list[str] = []
    clock = Clock()

    code, report = _drain(svc, lanes, first, _transcribe(svc, ran), clock)

    assert (code, ran, report.jobs) == (0, ["j-1", "j-2"], ["j-1", "j-2"])
    assert clock.now >= 2.0  # it waited linger_s for more before closing
    lane = lanes.get(_lane_of(svc).key)
    assert not lane.open and lane.execution is None
    # The next short job opens a new execution.
    late = new_job("j-9", "gs://test-inbox/uploads/9.wav")
    svc.jobs.create(late)  # type: ignore[attr-defined]
    assert handle_dispatch(_request(late), svc, deps) == DispatchOutcome.LAUNCHED


def test_a_job_handed_off_while_lingering_is_taken() -> None:
    svc, deps, _, lanes, first = _lane_world(1)
    svc.jobs.transition("j-0", JobState.TRANSCRIBED)
    late = new_job("j-5", "gs://test-inbox/uploads/5.wav")
    svc.jobs.create(late)  # type: ignore[attr-defined]
    ran: list[str] = []
    clock = Clock()
    clock.on_sleep.append(lambda: handle_dispatch(_request(late), svc, deps))

    _drain(svc, lanes, first, _transcribe(svc, ran), clock)

    assert ran == ["j-5"]


def test_a_hand_off_racing_the_close_is_not_lost() -> None:
    svc, deps, _, lanes, first = _lane_world(1)
    svc.jobs.transition("j-0", JobState.TRANSCRIBED)
    late = new_job("j-7", "gs://test-inbox/uploads/7.wav")
    svc.jobs.create(late)  # type: ignore[attr-defined]
    key = _lane_of(svc).key
    real_in_lane = svc.jobs.in_lane  # type: ignore[attr-defined]
    raced = []

    def in_lane(lane: str, *, limit: int = 100) -> list[Job]:
        found = real_in_lane(lane, limit=limit)
        if not raced and not found:  # between the worker's query and its close
            raced.append(handle_dispatch(_request(late), svc, deps))
        return found

    svc.jobs.in_lane = in_lane  # type: ignore[attr-defined]
    ran: list[str] = []
    clock = Clock()
    _drain(
        svc,
        lanes,
        first,
        _transcribe(svc, ran),
        clock,
        LaneEnv(key=key, linger_s=0, accept_for_s=3600),
    )

    assert raced == [DispatchOutcome.BATCHED] and ran == ["j-7"]


def test_a_retried_lane_task_resumes_its_claimed_job_first() -> None:
    svc, _, _, lanes, first = _lane_world(3)
    svc.jobs.transition("j-0", JobState.TRANSCRIBED)
    lane = _lane_of(svc)
    ran: list[str] = []
    clock = Clock()

    code, _ = _drain(svc, lanes, first, _transcribe(svc, ran, crash={"j-1"}), clock, lane)
    assert (code, ran) == (1, ["j-1"])  # Cloud Run retries the task

    retry = TaskEnv(plan=first.plan, index=0, attempt=1, execution="ex-1")
    code, _ = _drain(svc, lanes, retry, _transcribe(svc, ran), clock, lane)
    assert (code, ran) == (0, ["j-1", "j-1", "j-2"])
    assert all(svc.jobs.get(j).state == JobState.TRANSCRIBED for j in ("j-1", "j-2"))


def test_on_the_last_attempt_a_crashing_job_does_not_stop_the_others() -> None:
    svc, _, _, lanes, first = _lane_world(3)
    svc.jobs.transition("j-0", JobState.TRANSCRIBED)
    last = TaskEnv(
        plan=first.plan, index=0, attempt=svc.settings.executions.max_retries, execution="ex-1"
    )
    ran: list[str] = []
    clock = Clock()

    code, report = _drain(svc, lanes, last, _transcribe(svc, ran, crash={"j-1"}), clock)

    assert (code, ran, report.crashed) == (1, ["j-1", "j-2"], ["j-1"])
    assert svc.jobs.get("j-2").state == JobState.TRANSCRIBED
