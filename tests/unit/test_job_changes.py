"""The job changes the handlers apply with JobStore.update (common/domain/jobs.py), as tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from common.domain.errors import InvalidTransition
from common.domain.jobs import (
    Job,
    JobState,
    held_by_notes_batch,
    launch_settled,
    launch_taken_over,
    transcribed,
)
from common.domain.lease import Lease
from common.domain.transcripts import Transcript, summarize
from tests.fakes import new_job

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
MINE = Lease(holder="mine", taken_at=NOW, ttl_s=60)
THEIRS_FRESH = Lease(holder="theirs", taken_at=NOW, ttl_s=60)
THEIRS_STALE = Lease(holder="theirs", taken_at=NOW - timedelta(hours=1), ttl_s=60)


def _job(
    state: JobState = JobState.DISPATCHED,
    launch: Lease | None = None,
    execution: str | None = None,
    batch_lane: str | None = None,
) -> Job:
    job = new_job().model_copy(update={"state": state, "execution": execution})
    return job.coordinated(launch=launch, batch_lane=batch_lane)


@pytest.mark.parametrize(
    ("job", "execution", "expected"),
    [
        # (launch lease, execution) after our launch settles; None: no change
        (_job(launch=THEIRS_FRESH), "ex-1", None),  # not ours
        (_job(launch=MINE), "ex-1", (None, "ex-1")),  # launched: swapped for its name
        (_job(launch=MINE), None, (MINE.model_copy(update={"ttl_s": 0.0}), None)),  # lapses
        (_job(launch=MINE, batch_lane="lane"), None, (None, None)),  # back in its lane's queue
    ],
)
def test_launch_settled(
    job: Job, execution: str | None, expected: tuple[Lease | None, str | None] | None
) -> None:
    settled = launch_settled(job, "mine", execution)
    after = None if settled is None else (settled.coordination.launch, settled.execution)
    assert after == expected


@pytest.mark.parametrize(
    ("current", "seen", "taken"),
    [
        (_job(launch=THEIRS_STALE), _job(launch=THEIRS_STALE), True),  # its holder died
        (_job(execution="dead"), _job(execution="dead"), True),  # its execution died
        (_job(launch=THEIRS_FRESH), _job(launch=THEIRS_STALE), False),  # retaken meanwhile
        (_job(execution="new"), _job(execution="dead"), False),  # relaunched meanwhile
        (_job(JobState.TRANSCRIBED, execution="dead"), _job(execution="dead"), False),  # moved on
    ],
)
def test_launch_taken_over(current: Job, seen: Job, taken: bool) -> None:
    new = launch_taken_over(current, seen, "mine", NOW, 60)
    assert (new is not None) is taken
    if new is not None:
        assert new.coordination.launch == MINE and new.attempts == current.attempts + 1


@pytest.mark.parametrize(
    ("batch", "held"),
    [
        (None, False),
        (Lease(holder="other-job", taken_at=NOW, ttl_s=60), True),
        (Lease(holder="other-job", taken_at=NOW - timedelta(seconds=61), ttl_s=60), False),
    ],
)
def test_held_by_notes_batch(batch: Lease | None, held: bool) -> None:
    assert held_by_notes_batch(new_job().coordinated(notes_batch=batch), NOW) is held


def test_a_job_is_never_held_by_its_own_notes_batch() -> None:
    job = new_job()
    own = Lease(holder=job.job_id, taken_at=NOW, ttl_s=60)
    assert not held_by_notes_batch(job.coordinated(notes_batch=own), NOW)


def test_transcribed_moves_the_job_with_its_summary_and_usage_in_one_change() -> None:
    transcript = Transcript(job_id="j-1", language="en", duration_s=3, model="tiny.en", segments=[])
    summary = summarize(transcript)
    outputs = {"transcript.json": "gs://r/jobs/j-1/transcript.json"}
    job = _job(JobState.TRANSCRIBING).model_copy(update={"usage": {"transcribed_audio_s": 1.0}})
    moved = transcribed(job, outputs, {"transcribed_audio_s": 3.0}, summary)
    assert moved is not None and moved.state is JobState.TRANSCRIBED
    assert moved.transcription == summary and moved.outputs == outputs
    assert moved.usage == {"transcribed_audio_s": 4.0}
    assert transcribed(moved, outputs, {"transcribed_audio_s": 3.0}, summary) is None  # once
    with pytest.raises(InvalidTransition):
        transcribed(_job(JobState.COMPLETED), outputs, {}, summary)
