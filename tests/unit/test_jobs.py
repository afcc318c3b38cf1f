from __future__ import annotations

from datetime import timedelta
from itertools import product

import pytest

from common.domain.errors import InvalidTransition
from common.domain.jobs import (
    Job,
    JobError,
    JobSource,
    JobState,
    advance,
    api_job_id,
    can_transition,
    upload_job_id,
)


def _job(state: JobState = JobState.QUEUED) -> Job:
    job = Job.new(job_id="j1", owner="o", source=JobSource(uri="gs://b/x.wav"), retention_days=7)
    return job.model_copy(update={"state": state})


# The rule, written out: may a job in the row's state be moved to the column's state?
# "y" yes, "-" no. Forward along the pipeline (skipping ahead too), FAILED or CANCELLED from
# any live state; never back, never to the same state, never out of a final state.
COLUMNS = (
    JobState.QUEUED,
    JobState.DISPATCHED,
    JobState.TRANSCRIBING,
    JobState.TRANSCRIBED,
    JobState.SUMMARIZING,
    JobState.COMPLETED,
    JobState.FAILED,
    JobState.CANCELLED,
)
TRANSITIONS = """
# to:         QUEUED DISPATCHED TRANSCRIBING TRANSCRIBED SUMMARIZING COMPLETED FAILED CANCELLED
QUEUED           -        y           y           y           y          y        y       y
DISPATCHED       -        -           y           y           y          y        y       y
TRANSCRIBING     -        -           -           y           y          y        y       y
TRANSCRIBED      -        -           -           -           y          y        y       y
SUMMARIZING      -        -           -           -           -          y        y       y
COMPLETED        -        -           -           -           -          -        -       -
FAILED           -        -           -           -           -          -        -       -
CANCELLED        -        -           -           -           -          -        -       -
"""
ALLOWED = {
    (JobState(row), to): mark == "y"
    for line in TRANSITIONS.splitlines()
    if line and not line.startswith("#")
    for row, *marks in [line.split()]
    for to, mark in zip(COLUMNS, marks, strict=True)
}


@pytest.mark.parametrize(
    ("current", "requested"),
    list(product(JobState, JobState)),
    ids=lambda state: str(state),
)
def test_transition_table(current: JobState, requested: JobState) -> None:
    assert can_transition(current, requested) is ALLOWED[current, requested]


def test_advance_records_time_outputs_and_error() -> None:
    job, changed = advance(
        _job(JobState.TRANSCRIBING),
        JobState.FAILED,
        error=JobError(code="undecodable", message="not audio"),
        outputs={"log": "gs://x"},
    )
    assert changed and job.state == JobState.FAILED
    assert JobState.FAILED in job.state_times
    assert job.error == JobError(code="undecodable", message="not audio")
    assert job.outputs == {"log": "gs://x"}


def test_same_state_is_a_no_op_and_backwards_raises() -> None:
    job = _job(JobState.DISPATCHED)
    assert advance(job, JobState.DISPATCHED) == (job, False)
    with pytest.raises(InvalidTransition) as err:
        advance(job, JobState.QUEUED)
    assert (err.value.current, err.value.requested) == (JobState.DISPATCHED, JobState.QUEUED)


def test_completed_sets_full_progress() -> None:
    job, _ = advance(_job(JobState.SUMMARIZING), JobState.COMPLETED)
    assert job.progress == 1.0


def test_new_job_expires_after_retention() -> None:
    job = _job()
    assert job.expire_at - job.created_at == timedelta(days=7)
    assert job.state_times == {JobState.QUEUED: job.created_at}


def test_job_ids() -> None:
    assert upload_job_id("b", "uploads/a.wav", 1) == upload_job_id("b", "uploads/a.wav", "1")
    assert upload_job_id("b", "uploads/a.wav", 1) != upload_job_id("b", "uploads/a.wav", 2)
    assert api_job_id("alice", "k") == api_job_id("alice", "k")
    assert api_job_id("alice", "k") != api_job_id("bob", "k")
    assert api_job_id("alice", None) != api_job_id("alice", None)


def test_document_round_trip_keeps_datetimes() -> None:
    job = _job()
    doc = job.to_document()
    assert doc["expire_at"] == job.expire_at  # a datetime: Firestore TTL needs a timestamp
    assert Job.model_validate(doc) == job
