"""The notes handler with in-memory fakes (functions/notes.py): how long a job may wait for a
model provider that is out, a job claimed into another's batch, a corrupt notes.json."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

import pytest

from common.domain.jobs import Job, JobState, utcnow
from common.domain.lease import Lease
from common.domain.messages import TranscriptReady
from functions.bootstrap import Services
from functions.notes import NotesOutcome, NotesServices, _may_wait, handle_transcript_ready
from tests.fakes import MemoryBlobStore, MemoryJobStore, new_job, settings


def _svc(**llm: object) -> NotesServices:
    s = settings()
    s = s.model_copy(update={"llm": s.llm.model_copy(update=llm)})
    none = cast(Any, None)
    base = Services(settings=s, jobs=none, publisher=none, blobs=none)
    return NotesServices(core=base, engine=none, webhooks=None)


def _summarizing(seconds_ago: float = 0, waits: int = 0) -> Job:
    job = new_job()
    since = utcnow() - timedelta(seconds=seconds_ago)
    return job.model_copy(
        update={
            "state": JobState.SUMMARIZING,
            "state_times": {**job.state_times, JobState.SUMMARIZING: since},
        }
    ).coordinated(provider_waits=waits)


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
    claimed = _summarizing().coordinated(
        notes_batch=Lease(holder="the-other-job", taken_at=utcnow(), ttl_s=60)
    )
    jobs, blobs = MemoryJobStore(claimed), MemoryBlobStore()
    svc = _svc()
    svc = NotesServices(
        core=Services(
            settings=svc.core.settings, jobs=jobs, publisher=cast(Any, None), blobs=blobs
        ),
        engine=cast(Any, None),  # never reached: nothing is generated or paid
        webhooks=None,
    )

    outcome = handle_transcript_ready(TranscriptReady(job_id=claimed.job_id), svc)

    assert outcome is NotesOutcome.BATCHED
    assert jobs.get(claimed.job_id) == claimed and blobs.objects == {}


def test_a_corrupt_notes_file_fails_the_job_clearly_instead_of_retrying_for_ever() -> None:
    from common.domain.transcripts import result_uri

    job = _summarizing()
    jobs, blobs = MemoryJobStore(job), MemoryBlobStore()
    base = _svc().core
    uri = result_uri(base.settings, job.job_id, "notes.json")
    blobs.write_bytes(uri, b'{"not": "notes"}', content_type="application/json")
    svc = NotesServices(
        core=Services(settings=base.settings, jobs=jobs, publisher=cast(Any, None), blobs=blobs),
        engine=cast(Any, None),
        webhooks=None,
    )

    assert handle_transcript_ready(TranscriptReady(job_id=job.job_id), svc) is NotesOutcome.FAILED
    failed = jobs.get(job.job_id)
    assert failed.state is JobState.FAILED and failed.error is not None
    assert failed.error.code == "bad_notes" and "notes.json" in failed.error.message


class CountingEngine:
    """Notes made from the text, and a count of what was paid for."""

    def __init__(self) -> None:
        self.calls = 0

    def generate(self, job_id: str, pieces: list[str], template: Any, **_: object) -> Any:
        from common.domain.notes import Notes, Provenance, Usage

        self.calls += 1
        notes = Notes(
            title="t",
            summary=" ".join(pieces),
            key_points=pieces,
            action_items=[],
            decisions=[],
            open_questions=[],
            topics=[],
            people=[],
            diary_entry="d",
        )
        usage = Usage(prompt_tokens=100, completion_tokens=50)
        return notes, Provenance(provider="openai", model="m", calls=1, usage=usage, cost_usd=0.01)

    def generate_batch(self, items: list[tuple[str, str]], template: Any, **_: object) -> Any:
        made = {job_id: self.generate(job_id, [text], template) for job_id, text in items}
        self.calls -= len(items) - 1  # one request for all of them
        return made


def _transcribed(job_id: str, owner: str, text: str, blobs: MemoryBlobStore) -> Job:
    from common.domain.transcripts import Segment, Transcript, result_uri

    job = new_job(job_id).model_copy(update={"owner": owner, "state": JobState.TRANSCRIBED})
    transcript = Transcript(
        job_id=job_id,
        language="en",
        duration_s=3,
        model="tiny.en",
        segments=[Segment(start=0, end=3, text=text)],
    )
    uri = result_uri(settings(), job_id, "transcript.json")
    blobs.write_bytes(uri, transcript.model_dump_json().encode(), content_type="x")
    return job


def test_the_same_owners_identical_transcript_reuses_its_notes_and_pays_nothing() -> None:
    blobs = MemoryBlobStore()
    first = _transcribed("a-1", "alice", "Ship the release on Friday.", blobs)
    again = _transcribed("a-2", "alice", "Ship the release on Friday.", blobs)
    other_owner = _transcribed("b-1", "bob", "Ship the release on Friday.", blobs)
    other_text = _transcribed("a-3", "alice", "Something else entirely.", blobs)
    jobs, engine = MemoryJobStore(first, again, other_owner, other_text), CountingEngine()
    base = _svc(batch_max_items=1).core  # one request per job, to count them
    svc = NotesServices(
        core=Services(settings=base.settings, jobs=jobs, publisher=cast(Any, None), blobs=blobs),
        engine=cast(Any, engine),
        webhooks=None,
    )

    for job in (first, again, other_owner, other_text):
        outcome = handle_transcript_ready(TranscriptReady(job_id=job.job_id), svc)
        assert outcome is NotesOutcome.COMPLETED

    assert engine.calls == 3  # alice's repeat was not paid for; bob's and new text were
    assert jobs.get("a-1").cost_usd == 0.01 and jobs.get("b-1").cost_usd == 0.01
    reused = jobs.get("a-2")
    assert reused.cost_usd == 0.0 and reused.usage["llm_calls"] == 0
    from common.domain.notes import NotesDocument
    from common.domain.transcripts import result_uri

    doc = NotesDocument.model_validate_json(
        blobs.read_bytes(result_uri(base.settings, "a-2", "notes.json"))
    )
    assert doc.job_id == "a-2" and doc.provenance.from_cache
    assert doc.notes.summary == "Ship the release on Friday."
    # The cache holds no other owner's entry under alice's folder, and the reverse.
    cached = [u for u in blobs.objects if "/notes/" in u]
    assert len(cached) == 3


def test_notes_made_in_a_batch_are_kept_where_a_repeat_and_delete_look_for_them() -> None:
    from common.domain.transcripts import Transcript, result_uri
    from common.notes import cache as notes_cache

    blobs = MemoryBlobStore()
    first = _transcribed("a-1", "alice", "Ship the release on Friday.", blobs)
    partner = _transcribed("a-2", "alice", "Call the supplier tomorrow.", blobs)
    jobs, engine = MemoryJobStore(first, partner), CountingEngine()
    base = _svc().core
    svc = NotesServices(
        core=Services(settings=base.settings, jobs=jobs, publisher=cast(Any, None), blobs=blobs),
        engine=cast(Any, engine),
        webhooks=None,
    )

    assert handle_transcript_ready(TranscriptReady(job_id="a-1"), svc) is NotesOutcome.COMPLETED
    assert engine.calls == 1 and jobs.get("a-2").state is JobState.COMPLETED  # one request

    s = base.settings
    for job in (first, partner):  # the key DELETE computes from the stored transcript
        transcript = Transcript.model_validate_json(
            blobs.read_bytes(result_uri(s, job.job_id, "transcript.json"))
        )
        key = notes_cache.cache_key(transcript, job.options, s)
        assert blobs.stat(notes_cache.cache_uri(s, "alice", key)) is not None, job.job_id
