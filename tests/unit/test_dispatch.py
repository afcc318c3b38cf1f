"""``dispatch`` with in-memory fakes: tier, model and chunk plan, one execution per job under
redelivery, and clean rejections."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import cast

import pytest

from common.domain.errors import Busy, ExecutorUnavailable, InvalidInput
from common.domain.jobs import Job, JobState, utcnow
from common.domain.lease import Lease
from common.domain.messages import TranscriptionRequested, decode_push
from common.domain.ports import Publisher
from common.domain.transcription_plan import PLAN_ENV, ChunkPlan
from functions.bootstrap import Services
from functions.dispatch import (
    DispatchOutcome,
    DispatchServices,
    choose_tier,
    handle_dispatch,
)
from tests.fakes import FakeLauncher, FakeProber, MemoryBlobStore, MemoryJobStore, new_job, settings


def _world(
    job: Job, **groups: dict[str, object]
) -> tuple[Services, DispatchServices, FakeLauncher, FakeProber]:
    svc = Services(
        settings=settings(**groups),
        jobs=MemoryJobStore(job),
        publisher=cast(Publisher, None),  # dispatch publishes nothing
        blobs=MemoryBlobStore(),
    )
    launcher, prober = FakeLauncher(), FakeProber()
    return svc, DispatchServices(launcher=launcher, prober=prober), launcher, prober


def _request(job: Job) -> TranscriptionRequested:
    return TranscriptionRequested(job_id=job.job_id)


def test_queued_job_is_launched_once_with_its_plan_and_recorded() -> None:
    job = new_job()
    svc, deps, launcher, _ = _world(job)

    assert handle_dispatch(_request(job), svc, deps) == DispatchOutcome.LAUNCHED

    stored = svc.jobs.get(job.job_id)
    assert stored.state == JobState.DISPATCHED
    assert (
        stored.execution == "projects/p/locations/r/jobs/transcribe-cpu/executions/transcribe-cpu-0"
    )
    assert stored.coordination.launch is None  # claim settled
    assert stored.source.duration_s == 30.0
    [launch] = launcher.launches
    plan = ChunkPlan.model_validate_json(launch["env"][PLAN_ENV])
    assert (plan.job_id, plan.model, plan.chunk_count) == (
        job.job_id,
        "base",
        1,
    )  # the CPU tier default
    assert (
        launch["task_count"] == 1
        and launch["timeout_s"] == svc.settings.executions.cpu_task_timeout_s
    )


def test_redelivery_while_the_execution_lives_launches_nothing() -> None:
    job = new_job()
    svc, deps, launcher, _ = _world(job)
    handle_dispatch(_request(job), svc, deps)

    assert handle_dispatch(_request(job), svc, deps) == DispatchOutcome.ALREADY_RUNNING
    assert handle_dispatch(_request(job), svc, deps) == DispatchOutcome.ALREADY_RUNNING
    assert len(launcher.launches) == 1


def test_redelivery_after_the_execution_died_launches_again() -> None:
    job = new_job()
    svc, deps, launcher, _ = _world(job)
    handle_dispatch(_request(job), svc, deps)
    launcher.alive.clear()  # it failed before any task moved the job on

    assert handle_dispatch(_request(job), svc, deps) == DispatchOutcome.LAUNCHED
    assert len(launcher.launches) == 2
    assert svc.jobs.get(job.job_id).execution.endswith("transcribe-cpu-1")  # type: ignore[union-attr]


def test_a_fresh_launch_claim_makes_a_redelivery_wait() -> None:
    job = new_job()
    svc, deps, launcher, _ = _world(job)
    launcher.fail_next = False
    # Another delivery holds the claim (it is between its transition and its launch).
    lease = Lease(holder="abc", taken_at=utcnow(), ttl_s=svc.settings.executions.launch_lease_s)
    svc.jobs.update(
        job.job_id,
        lambda j: j.model_copy(update={"state": JobState.DISPATCHED}).coordinated(launch=lease),
    )
    with pytest.raises(Busy):
        handle_dispatch(_request(job), svc, deps)
    assert launcher.launches == []


def test_a_stale_launch_claim_is_taken_over() -> None:
    job = new_job()
    svc, deps, launcher, _ = _world(job)
    lease = Lease(
        holder="abc",
        taken_at=utcnow() - timedelta(hours=1),
        ttl_s=svc.settings.executions.launch_lease_s,
    )
    svc.jobs.update(
        job.job_id,
        lambda j: j.model_copy(update={"state": JobState.DISPATCHED}).coordinated(launch=lease),
    )
    assert handle_dispatch(_request(job), svc, deps) == DispatchOutcome.LAUNCHED
    assert len(launcher.launches) == 1


def test_a_failed_launch_releases_its_claim_for_the_retry() -> None:
    job = new_job()
    svc, deps, launcher, _ = _world(job)
    launcher.fail_next = True
    with pytest.raises(ExecutorUnavailable):
        handle_dispatch(_request(job), svc, deps)
    assert svc.jobs.get(job.job_id).state == JobState.DISPATCHED

    assert (
        handle_dispatch(_request(job), svc, deps) == DispatchOutcome.LAUNCHED
    )  # no lease to wait out
    assert len(launcher.launches) == 1


def test_undecodable_audio_fails_the_job_and_launches_nothing() -> None:
    job = new_job()
    svc, deps, launcher, prober = _world(job)
    prober.error = InvalidInput("the audio cannot be decoded: noise", code="undecodable_audio")

    assert handle_dispatch(_request(job), svc, deps) == DispatchOutcome.REJECTED
    stored = svc.jobs.get(job.job_id)
    assert stored.state == JobState.FAILED and stored.error is not None
    assert stored.error.code == "undecodable_audio"
    assert launcher.launches == []
    assert handle_dispatch(_request(job), svc, deps) == DispatchOutcome.NOT_NEEDED  # a redelivery


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"model": "large-v9"}, "unknown_model"),
        ({"model": "large-v3"}, "model_not_installed"),  # in the catalog, not in the image
        ({"model": "tiny.en", "language": "de"}, "model_language_mismatch"),
        ({"model": "tiny.en", "task": "translate"}, "model_cannot_translate"),
    ],
)
def test_bad_model_options_fail_clearly(options: dict[str, str], code: str) -> None:
    job = new_job(**options)
    svc, deps, launcher, prober = _world(job)
    assert handle_dispatch(_request(job), svc, deps) == DispatchOutcome.REJECTED
    assert svc.jobs.get(job.job_id).error.code == code  # type: ignore[union-attr]
    assert launcher.launches == [] and prober.calls == 0


def test_too_long_audio_is_rejected() -> None:
    job = new_job()
    svc, deps, launcher, prober = _world(job)
    prober.duration_s = svc.settings.limits.max_audio_seconds + 1
    assert handle_dispatch(_request(job), svc, deps) == DispatchOutcome.REJECTED
    assert svc.jobs.get(job.job_id).error.code == "too_long"  # type: ignore[union-attr]
    assert launcher.launches == []


def test_long_audio_is_split_into_chunks_that_fit_the_task_limit() -> None:
    job = new_job(priority="high", model="base", language="de")
    svc, deps, launcher, prober = _world(job)
    prober.duration_s = 3 * 3600 + 10.0  # 3 h and a 10 s tail

    handle_dispatch(_request(job), svc, deps)
    [launch] = launcher.launches
    plan = ChunkPlan.model_validate_json(launch["env"][PLAN_ENV])
    assert launch["job"] == "transcribe-gpu"
    assert plan.chunk_count == launch["task_count"] == 9  # 20-minute chunks, the tail folded in
    assert (plan.model, plan.language) == ("base", "de")
    assert plan.window(0) == (0.0, 1202.0)
    assert plan.window(8) == (8 * 1200.0 - 2.0, None)


def test_tier_follows_priority_and_the_batch_tier_setting() -> None:
    s = settings()
    assert choose_tier("high", s)[0] == "transcribe-gpu"  # type: ignore[arg-type]
    assert choose_tier("normal", s)[0] == "transcribe-cpu"  # type: ignore[arg-type]
    gpu_batch = settings(executions={"batch_tier": "gpu"})
    assert choose_tier("low", gpu_batch) == ("transcribe-gpu", s.executions.gpu_task_timeout_s)  # type: ignore[arg-type]


def test_push_body_is_parsed_and_poison_is_refused() -> None:
    body = {
        "message": {
            "data": base64.b64encode(json.dumps({"job_id": "j-9"}).encode()).decode(),
            "attributes": {
                "job_id": "j-9",
                "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01",
            },
        },
        "subscription": "projects/p/subscriptions/dispatch",
    }
    request, attributes = decode_push(body, TranscriptionRequested)
    assert request.job_id == "j-9" and attributes["traceparent"].startswith("00-")
    for poison in (
        {},
        {"message": {"data": "!!"}},
        {"message": {"data": base64.b64encode(b"[]").decode()}},
    ):
        with pytest.raises(InvalidInput):
            decode_push(poison, TranscriptionRequested)


def test_a_job_that_moved_on_or_vanished_needs_nothing() -> None:
    job = new_job()
    svc, deps, launcher, _ = _world(job)
    svc.jobs.transition(job.job_id, JobState.TRANSCRIBING)
    assert handle_dispatch(_request(job), svc, deps) == DispatchOutcome.NOT_NEEDED
    assert (
        handle_dispatch(TranscriptionRequested(job_id="nope"), svc, deps)
        == DispatchOutcome.NOT_NEEDED
    )
    assert launcher.launches == []


def test_a_transcribing_job_whose_execution_ended_is_launched_again_a_bounded_number_of_times() -> (
    None
):
    job = new_job()
    svc, deps, launcher, _ = _world(job, executions={"max_relaunches": 2})
    handle_dispatch(_request(job), svc, deps)
    svc.jobs.transition(job.job_id, JobState.TRANSCRIBING)  # its task started, then was killed

    # While its execution lives (Cloud Run may still retry the task), nothing is launched.
    assert handle_dispatch(_request(job), svc, deps) == DispatchOutcome.ALREADY_RUNNING
    for relaunch in (1, 2):
        launcher.alive.clear()  # killed by its timeout, out of retries, or cancelled
        assert handle_dispatch(_request(job), svc, deps) == DispatchOutcome.LAUNCHED
        stored = svc.jobs.get(job.job_id)
        assert (stored.state, stored.attempts) == (JobState.TRANSCRIBING, relaunch)
        assert stored.execution is not None and stored.execution.endswith(f"-{relaunch}")
    launcher.alive.clear()
    assert handle_dispatch(_request(job), svc, deps) == DispatchOutcome.REJECTED
    failed = svc.jobs.get(job.job_id)
    assert failed.state == JobState.FAILED and failed.error is not None
    assert failed.error.code == "transcription_lost" and "3 times" in failed.error.message
    assert len(launcher.launches) == 3
