"""The notes handler with in-memory fakes (functions/notes.py): how long a job may wait for a
model provider that is out, a job claimed into another's batch, a corrupt notes.json."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

import pytest

from common.jobs import Job, JobState, utcnow
from common.messages import TranscriptReady
from functions.bootstrap import Services
from functions.notes import NotesOutcome, NotesServices, _may_wait, handle_transcript_ready
from tests.unit.test_transcribe_fakes import MemoryBlobStore, MemoryJobStore, new_job, settings


def _svc(**llm: object) -> NotesServices:
    s = settings()
    s = s.model_copy(update={"llm": s.llm.model_copy(update=llm)})
    none = cast(Any, None)
    base = Services(settings=s, jobs=none, publisher=none, blobs=none)
    return NotesServices(base=base, engine=none, webhooks=None)


def _summarizing(seconds_ago: float = 0, waits: int = 0) -> Job:
    job = new_job()
    since = utcnow() - timedelta(seconds=seconds_ago)
    return job.model_copy(
        update={
            "state": JobState.SUMMARIZING,
            "state_times": {**job.state_times, JobState.SUMMARIZING: since},
            "provider_waits": waits,
        }
    )


def test_a_new_job_may_wait() -> None:
    assert _may_wait(new_job(), _svc(), None)  # first delivery: not SUMMARIZING yet


@pytest.mark.parametrize(("waits", "may"), [(0, True), (1, True), (2, True), (3, False)])
def test_waits_stop_before_the_dead_letter(waits: int, may: bool) -> None:
    # 5 delivery attempts: deliveries 1-3 may wait, the 4th must produce notes.
    assert _may_wait(_summarizing(waits=waits), _svc(), None) is may


def test_pubsubs_delivery_count_is_honoured_when_it_is_given() -> None:
    assert _may_wait(_summarizing(), _svc(), 3)
    assert not _may_wait(_summarizing(), _svc(), 4)


def test_the_wait_is_bounded_in_time_and_can_be_turned_off() -> None:
    assert not _may_wait(_summarizing(seconds_ago=301), _svc(), None)
    assert _may_wait(_summarizing(seconds_ago=10), _svc(), None)
    assert not _may_wait(_summarizing(), _svc(provider_wait_s=0), None)


def test_a_job_in_another_jobs_batch_is_left_to_it_while_the_claim_is_fresh() -> None:
    claimed = _summarizing().model_copy(
        update={"notes_batch": "the-other-job", "notes_batch_at": utcnow()}
    )
    jobs, blobs = MemoryJobStore(claimed), MemoryBlobStore()
    svc = _svc()
    svc = NotesServices(
        base=Services(
            settings=svc.base.settings, jobs=jobs, publisher=cast(Any, None), blobs=blobs
        ),
        engine=cast(Any, None),  # never reached: nothing is generated or paid
        webhooks=None,
    )

    outcome = handle_transcript_ready(TranscriptReady(job_id=claimed.job_id), svc)

    assert outcome is NotesOutcome.BATCHED
    assert jobs.get(claimed.job_id) == claimed and blobs.objects == {}


def test_a_corrupt_notes_file_fails_the_job_clearly_instead_of_retrying_for_ever() -> None:
    from common.transcripts import result_uri

    job = _summarizing()
    jobs, blobs = MemoryJobStore(job), MemoryBlobStore()
    base = _svc().base
    uri = result_uri(base.settings, job.job_id, "notes.json")
    blobs.write_bytes(uri, b'{"not": "notes"}', content_type="application/json")
    svc = NotesServices(
        base=Services(settings=base.settings, jobs=jobs, publisher=cast(Any, None), blobs=blobs),
        engine=cast(Any, None),
        webhooks=None,
    )

    assert handle_transcript_ready(TranscriptReady(job_id=job.job_id), svc) is NotesOutcome.FAILED
    failed = jobs.get(job.job_id)
    assert failed.state is JobState.FAILED and failed.error is not None
    assert failed.error.code == "bad_notes" and "notes.json" in failed.error.message
