"""``dead_letters`` with in-memory fakes: a job waiting for the step a dead-lettered message
was for becomes FAILED with the reason, once; anything else is left alone."""

from __future__ import annotations

import base64
import json
from typing import Any, cast

import pytest

from common.domain.jobs import Job, JobState
from common.domain.ports import Publisher
from functions.bootstrap import Services
from functions.dead_letters import (
    DELIVERY_COUNT,
    ERROR_CODE,
    SOURCE_SUBSCRIPTION,
    DeadLetter,
    DeadLetterOutcome,
    handle_dead_letter,
)
from tests.fakes import FakeLauncher, MemoryBlobStore, MemoryJobStore, new_job, settings

PROJECT_SUBS = "projects/audionotes-test/subscriptions/"


def _services(*jobs: Job) -> Services:
    return Services(
        settings=settings(),
        jobs=MemoryJobStore(*jobs),
        publisher=cast(Publisher, None),  # dead_letters publishes nothing
        blobs=MemoryBlobStore(),
    )


def _push(
    body: bytes | None,
    *,
    subscription: str = "dispatch",
    count: str = "5",
    attributes: dict[str, str] | None = None,
) -> dict[str, Any]:
    attrs = {SOURCE_SUBSCRIPTION: PROJECT_SUBS + subscription, DELIVERY_COUNT: count}
    attrs.update(attributes or {})
    message: dict[str, Any] = {"messageId": "m-1", "attributes": attrs}
    if body is not None:
        message["data"] = base64.b64encode(body).decode()
    return {"message": message, "subscription": PROJECT_SUBS + "transcription-requests-dead-letter"}


def _letter(job: Job, subscription: str = "dispatch") -> DeadLetter:
    body = json.dumps({"job_id": job.job_id}).encode()
    return DeadLetter.from_push(_push(body, subscription=subscription))


def _at(job: Job, *states: JobState, execution: str | None = None) -> Job:
    store = MemoryJobStore(job)
    for state in states:
        store.transition(job.job_id, state, execution=execution)
    return store.get(job.job_id)


def test_a_queued_job_is_failed_with_subscription_and_attempts_once() -> None:
    job = new_job()
    svc, launcher = _services(job), FakeLauncher()

    outcome = handle_dead_letter(_letter(job), svc, launcher)
    again = [handle_dead_letter(_letter(job), svc, launcher) for _ in range(2)]

    assert outcome == DeadLetterOutcome.FAILED
    assert again == [DeadLetterOutcome.ALREADY_FAILED] * 2
    failed = svc.jobs.get(job.job_id)
    assert failed.state == JobState.FAILED and failed.error is not None
    assert failed.error.code == ERROR_CODE
    assert "on subscription dispatch;" in failed.error.message
    assert "after 5 delivery attempts" in failed.error.message
    assert cast(MemoryJobStore, svc.jobs).writes == 1  # the repeats changed nothing


@pytest.mark.parametrize(
    ("subscription", "states", "outcome"),
    [
        ("dispatch", (JobState.DISPATCHED,), DeadLetterOutcome.FAILED),
        ("dispatch", (JobState.TRANSCRIBING,), DeadLetterOutcome.NOT_STUCK),
        ("dispatch", (JobState.TRANSCRIBED,), DeadLetterOutcome.NOT_STUCK),
        ("notes", (JobState.TRANSCRIBED,), DeadLetterOutcome.FAILED),
        ("notes", (JobState.TRANSCRIBED, JobState.SUMMARIZING), DeadLetterOutcome.FAILED),
        ("notes", (JobState.COMPLETED,), DeadLetterOutcome.NOT_STUCK),
        ("notes", (JobState.CANCELLED,), DeadLetterOutcome.NOT_STUCK),
        ("on-upload", (), DeadLetterOutcome.IGNORED),
    ],
)
def test_only_a_job_waiting_for_that_step_is_failed(
    subscription: str, states: tuple[JobState, ...], outcome: DeadLetterOutcome
) -> None:
    job = _at(new_job(), *states)
    svc = _services(job)

    assert handle_dead_letter(_letter(job, subscription), svc, FakeLauncher()) == outcome
    after = svc.jobs.get(job.job_id)
    if outcome == DeadLetterOutcome.FAILED:
        assert after.state == JobState.FAILED
    else:
        assert after == job  # untouched


def test_a_dispatched_job_whose_execution_lives_is_left_running() -> None:
    execution = "projects/p/locations/r/jobs/transcribe-cpu/executions/e-1"
    job = _at(new_job(), JobState.DISPATCHED, execution=execution)
    svc, launcher = _services(job), FakeLauncher(alive={execution})

    assert handle_dead_letter(_letter(job), svc, launcher) == DeadLetterOutcome.NOT_STUCK
    assert svc.jobs.get(job.job_id).state == JobState.DISPATCHED

    launcher.alive.clear()  # the execution ended without moving the job on: stuck after all
    assert handle_dead_letter(_letter(job), svc, launcher) == DeadLetterOutcome.FAILED


def test_job_id_comes_from_the_attributes_when_the_body_is_unusable() -> None:
    job = new_job()
    svc = _services(job)
    letter = DeadLetter.from_push(_push(b"not json", attributes={"job_id": job.job_id}))

    assert letter.job_id == job.job_id
    assert handle_dead_letter(letter, svc, FakeLauncher()) == DeadLetterOutcome.FAILED


@pytest.mark.parametrize(
    "data",
    [None, {}, {"message": "x"}, _push(b"not json"), _push(None), _push(b'{"other": 1}')],
)
def test_a_letter_without_a_job_is_acknowledged(data: Any) -> None:
    job = new_job()
    svc = _services(job)
    letter = DeadLetter.from_push(data)

    assert letter.job_id is None
    assert handle_dead_letter(letter, svc, FakeLauncher()) == DeadLetterOutcome.IGNORED
    assert svc.jobs.get(job.job_id) == job


def test_a_letter_for_a_deleted_job_is_acknowledged() -> None:
    svc = _services()
    assert handle_dead_letter(_letter(new_job("gone")), svc, FakeLauncher()) == (
        DeadLetterOutcome.IGNORED
    )
