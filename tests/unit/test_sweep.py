"""``sweep`` with in-memory fakes: jobs waiting in a swept state longer than the threshold get
their message again, newer ones and other states do not, and a second run repeats exactly
the same (harmless: every handler is idempotent)."""

from __future__ import annotations

from datetime import timedelta
from typing import cast

from common.config.settings import Settings
from common.domain.jobs import Job, JobState, utcnow
from common.domain.ports import Page, Publisher
from functions.bootstrap import Services
from functions.sweep import SweepRequest, sweep
from tests.fakes import MemoryBlobStore, MemoryJobStore, RecordingPublisher, new_job, settings


class FilteringJobStore(MemoryJobStore):
    """Lists by state, newest first, in pages (what the sweep relies on)."""

    def list(self, **kw: object) -> Page:
        state, limit, token = kw.get("state"), cast(int, kw.get("limit", 20)), kw.get("page_token")
        jobs = sorted(
            (j for j in self.jobs.values() if state is None or j.state == state),
            key=lambda j: j.created_at,
            reverse=True,
        )
        start = int(cast(str, token)) if token else 0
        page = jobs[start : start + limit]
        more = start + limit < len(jobs)
        return Page(jobs=page, next_page_token=str(start + limit) if more else None)


def _aged(job: Job, minutes: float, *states: JobState) -> Job:
    """The job as it is after ``states``, each entered ``minutes`` ago."""
    then = utcnow() - timedelta(minutes=minutes)
    created = job.model_copy(
        update={"created_at": then, "updated_at": then, "state_times": {JobState.QUEUED: then}}
    )
    store = MemoryJobStore(created)
    for state in states:
        store.transition(job.job_id, state)
    moved = store.get(job.job_id)
    return moved.model_copy(update={"state_times": dict.fromkeys(moved.state_times, then)})


def _world(*jobs: Job) -> tuple[Services, RecordingPublisher, Settings]:
    s = settings()
    publisher = RecordingPublisher()
    svc = Services(
        settings=s,
        jobs=FilteringJobStore(*jobs),
        publisher=cast(Publisher, publisher),
        blobs=MemoryBlobStore(),
    )
    return svc, publisher, s


def test_stale_jobs_get_their_message_again_and_fresh_ones_do_not() -> None:
    queued = _aged(new_job("queued").coordinated(request_message_id="m0"), 30)
    never_published = _aged(new_job("never"), 30)
    dispatched = _aged(new_job("dispatched"), 30, JobState.DISPATCHED)
    transcribed = _aged(new_job("transcribed"), 30, JobState.TRANSCRIBED)
    summarizing = _aged(new_job("summarizing"), 30, JobState.TRANSCRIBED, JobState.SUMMARIZING)
    fresh = _aged(new_job("fresh"), 1)
    transcribing = _aged(new_job("transcribing"), 30, JobState.DISPATCHED, JobState.TRANSCRIBING)
    completed = _aged(new_job("done"), 30, JobState.COMPLETED)
    failed = _aged(new_job("failed"), 30, JobState.FAILED)
    svc, publisher, s = _world(
        queued,
        never_published,
        dispatched,
        transcribed,
        summarizing,
        fresh,
        transcribing,
        completed,
        failed,
    )

    report = sweep(svc, SweepRequest(older_than_s=600))

    assert sorted(report.requests) == ["dispatched", "never", "queued", "transcribing"]
    assert sorted(report.ready) == ["summarizing", "transcribed"]
    topics = {body["job_id"]: topic for topic, body, _ in publisher.published}
    assert topics == {
        "queued": s.topics.transcription_requests,
        "never": s.topics.transcription_requests,
        "dispatched": s.topics.transcription_requests,
        "transcribing": s.topics.transcription_requests,
        "transcribed": s.topics.transcripts_ready,
        "summarizing": s.topics.transcripts_ready,
    }
    # The request never published is now recorded, as on_upload would have.
    assert svc.jobs.get("never").coordination.request_message_id is not None
    assert svc.jobs.get("queued").coordination.request_message_id == "m0"
    # Nothing changed state: the handlers move the jobs on.
    assert svc.jobs.get("dispatched").state == JobState.DISPATCHED


def test_a_second_run_publishes_the_same_again_and_nothing_else() -> None:
    job = _aged(new_job("q").coordinated(request_message_id="m0"), 30)
    svc, publisher, _ = _world(job)
    first = sweep(svc, SweepRequest(older_than_s=600))
    second = sweep(svc, SweepRequest(older_than_s=600))
    assert first.requests == second.requests == ["q"]
    assert len(publisher.published) == 2


def test_pages_are_followed_and_max_jobs_bounds_a_run() -> None:
    jobs = [
        _aged(new_job(f"j-{i:03d}").coordinated(request_message_id="m"), 30 + i) for i in range(250)
    ]
    svc, publisher, _ = _world(*jobs)
    assert len(sweep(svc, SweepRequest(older_than_s=60)).requests) == 250
    bounded = sweep(svc, SweepRequest(older_than_s=60, max_jobs=120))
    assert len(bounded.requests) == 120
    assert len(publisher.published) == 370


def test_trace_context_travels_with_the_message() -> None:
    traceparent = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    job = _aged(new_job("t"), 30, JobState.TRANSCRIBED).model_copy(
        update={"traceparent": traceparent}
    )
    svc, publisher, _ = _world(job)
    sweep(svc, SweepRequest(older_than_s=60))
    [(_, _, attributes)] = publisher.published
    assert attributes["traceparent"] == traceparent


WAV = b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00" + b"\x00" * 64


def test_an_inbox_object_whose_event_was_lost_becomes_its_job() -> None:
    from common.domain.jobs import upload_job_id

    svc, publisher, s = _world()
    blobs = cast(MemoryBlobStore, svc.blobs)
    lost = f"gs://{s.buckets.inbox}/{s.buckets.inbox_prefix}lost.wav"
    blobs.write_bytes(lost, WAV, content_type="audio/wav")
    blobs.write_bytes(
        f"gs://{s.buckets.inbox}/{s.buckets.inbox_prefix}folder/", b"", content_type="x"
    )

    report = sweep(svc, SweepRequest(older_than_s=0))

    job_id = upload_job_id(s.buckets.inbox, f"{s.buckets.inbox_prefix}lost.wav", "1")
    assert report.uploads == [job_id]
    assert svc.jobs.get(job_id).state == JobState.QUEUED
    assert [body["job_id"] for _, body, _ in publisher.published] == [job_id]
    # The next run finds its job: the object is not handled twice.
    assert sweep(svc, SweepRequest(older_than_s=0)).uploads == []
    assert list(cast(MemoryJobStore, svc.jobs).jobs) == [job_id]


def test_results_whose_job_is_gone_are_deleted_and_others_kept() -> None:
    kept = _aged(new_job("kept"), 30, JobState.COMPLETED)
    svc, _, s = _world(kept)
    blobs = cast(MemoryBlobStore, svc.blobs)
    root = f"gs://{s.buckets.results}/{s.buckets.results_prefix}"
    for job_id in ("kept", "gone"):
        for name in ("transcript.json", "notes.json"):
            blobs.write_bytes(f"{root}{job_id}/{name}", b"{}", content_type="application/json")

    report = sweep(svc, SweepRequest(older_than_s=0))

    assert report.orphaned_results == ["gone"]
    assert sorted(blobs.objects) == [f"{root}kept/notes.json", f"{root}kept/transcript.json"]


def test_the_object_scans_can_be_turned_off() -> None:
    svc, _, s = _world()
    lost = f"gs://{s.buckets.inbox}/{s.buckets.inbox_prefix}lost.wav"
    cast(MemoryBlobStore, svc.blobs).write_bytes(lost, WAV, content_type="audio/wav")
    assert sweep(svc, SweepRequest(older_than_s=0, max_objects=0)).uploads == []
