"""The API's service layer (functions/api/service.py) on the shared fakes, called as the HTTP
layer calls it: submit, Idempotency-Key replays, ownership, results before they are ready, and
what DELETE removes. HTTP statuses are the HTTP layer's; here only the domain errors."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from common.domain.errors import InvalidInput, JobNotFound, PublishFailed
from common.domain.jobs import Job, JobOptions, JobSource, JobState, Priority
from common.domain.subtitles import SubtitleOptions, to_srt
from common.domain.transcripts import Transcript, result_uri
from common.edge.auth import Principal
from functions.api import build_api
from functions.api.service import (
    ApiServices,
    Forbidden,
    ResultNotReady,
    Submission,
    UnsupportedMedia,
    delete_job,
    get_job,
    read_result,
    submit_job,
    upload_folder,
)
from functions.bootstrap import Services
from tests.fakes import (
    FakeLauncher,
    MemoryBlobStore,
    MemoryJobStore,
    RecordingPublisher,
    make_segment,
    settings,
    wav_bytes,
)

ALICE = Principal(subject="alice", issuer=None, algorithm="HS256")
BOB = Principal(subject="bob", issuer=None, algorithm="HS256")


@dataclass
class World:
    api: ApiServices
    jobs: MemoryJobStore
    blobs: MemoryBlobStore
    publisher: RecordingPublisher
    executions: FakeLauncher

    def upload(self, caller: Principal, name: str = "a.wav", data: bytes | None = None) -> str:
        """An object in the caller's upload folder, as POST /v1/uploads and a PUT leave it."""
        uri = f"gs://test-inbox/{upload_folder(self.api, caller.subject)}{name}"
        self.blobs.write_bytes(uri, wav_bytes() if data is None else data, content_type="audio/wav")
        return uri

    def submit(
        self, caller: Principal, audio_url: str, key: str | None = None, **options: object
    ) -> tuple[Job, bool]:
        submission = Submission(audio_url=audio_url, options=JobOptions(**options))  # type: ignore[arg-type]
        return submit_job(self.api, caller, submission, key)


@pytest.fixture
def world() -> World:
    jobs, blobs, publisher, executions = (
        MemoryJobStore(),
        MemoryBlobStore(),
        RecordingPublisher(),
        FakeLauncher(),
    )
    core = Services(settings=settings(), jobs=jobs, publisher=publisher, blobs=blobs)
    return World(build_api(core, canceller=executions), jobs, blobs, publisher, executions)


# --- submit ------------------------------------------------------------------------------------


def test_a_submitted_job_is_the_callers_queued_and_published_once(world: World) -> None:
    uri = world.upload(ALICE)

    job, replayed = world.submit(ALICE, uri, priority="high")

    assert replayed is False
    stored = world.jobs.get(job.job_id)
    assert stored == job
    assert (stored.owner, stored.state, stored.options.priority) == (
        "alice",
        JobState.QUEUED,
        Priority.HIGH,
    )
    assert (stored.source.uri, stored.source.bytes) == (uri, len(world.blobs.objects[uri]))
    assert world.publisher.published == [
        (
            "transcription-requests",
            {"job_id": job.job_id, "priority": "high", "resend": False},
            {"priority": "high"},
        )
    ]
    assert stored.coordination.request_message_id == "msg-1"


def test_the_same_key_and_request_replays_the_job_without_publishing_again(world: World) -> None:
    uri = world.upload(ALICE)
    first, _ = world.submit(ALICE, uri, key="k-1")

    again, replayed = world.submit(ALICE, uri, key="k-1")

    assert replayed is True
    assert again == world.jobs.get(first.job_id)
    assert list(world.jobs.jobs) == [first.job_id]
    assert len(world.publisher.published) == 1


@pytest.mark.parametrize(
    ("audio", "options"), [("b.wav", {}), ("a.wav", {"priority": "low"})], ids=["audio", "options"]
)
def test_the_same_key_for_a_different_request_is_refused(
    world: World, audio: str, options: dict[str, str]
) -> None:
    first, _ = world.submit(ALICE, world.upload(ALICE, "a.wav"), key="k-1")
    other = world.upload(ALICE, audio)

    with pytest.raises(InvalidInput) as refused:
        world.submit(ALICE, other, key="k-1", **options)

    assert refused.value.code == "idempotency_key_reused"
    assert world.jobs.jobs == {first.job_id: world.jobs.get(first.job_id)}
    assert len(world.publisher.published) == 1


def test_keys_belong_to_their_caller(world: World) -> None:
    alices, _ = world.submit(ALICE, world.upload(ALICE), key="k-1")

    bobs, replayed = world.submit(BOB, world.upload(BOB), key="k-1")

    assert replayed is False and bobs.job_id != alices.job_id
    assert (world.jobs.get(bobs.job_id).owner, world.jobs.get(alices.job_id).owner) == (
        "bob",
        "alice",
    )


def test_a_malformed_key_is_refused_before_anything_is_read(world: World) -> None:
    with pytest.raises(InvalidInput) as refused:
        world.submit(ALICE, world.upload(ALICE), key="tab\there")
    assert refused.value.code == "bad_idempotency_key"
    assert world.jobs.jobs == {}


def test_another_callers_upload_is_forbidden(world: World) -> None:
    with pytest.raises(Forbidden) as refused:
        world.submit(ALICE, world.upload(BOB))
    assert refused.value.code == "source_forbidden"
    assert world.jobs.jobs == {} and world.publisher.published == []


def test_an_own_upload_that_is_not_audio_is_refused_and_deleted(world: World) -> None:
    uri = world.upload(ALICE, "notes.wav", b"meeting notes, not audio\n")

    with pytest.raises(UnsupportedMedia) as refused:
        world.submit(ALICE, uri)

    assert refused.value.code == "not_audio"
    assert uri not in world.blobs.objects
    assert world.jobs.jobs == {} and world.publisher.published == []


def test_a_failed_publish_withdraws_the_new_job(world: World) -> None:
    def unavailable(*args: object, **kwargs: object) -> str:
        raise PublishFailed("Pub/Sub did not confirm")

    world.publisher.publish = unavailable  # type: ignore[method-assign]

    with pytest.raises(PublishFailed):
        world.submit(ALICE, world.upload(ALICE), key="k-1")

    assert world.jobs.jobs == {}  # the retry with the same key starts afresh


# --- ownership and results ---------------------------------------------------------------------


def _job(world: World, state: JobState, **update: object) -> Job:
    job, _ = world.submit(ALICE, world.upload(ALICE))
    world.jobs.jobs[job.job_id] = job.model_copy(update={"state": state, **update})
    return world.jobs.get(job.job_id)


def test_another_callers_job_is_reported_like_a_missing_one(world: World) -> None:
    job = _job(world, JobState.COMPLETED)
    world.blobs.write_bytes(
        result_uri(world.api.core.settings, job.job_id, "notes.json"), b"{}", content_type="x"
    )

    refusals = [
        lambda: get_job(world.api, BOB, job.job_id),
        lambda: read_result(world.api, BOB, job.job_id, "notes", "json"),
        lambda: delete_job(world.api, BOB, job.job_id),
    ]
    for refusal in refusals:
        with pytest.raises(JobNotFound) as err:
            refusal()
        assert (err.value.code, err.value.message) == ("job_not_found", f"no job {job.job_id}")
    with pytest.raises(JobNotFound) as missing:
        get_job(world.api, ALICE, "a-" + "0" * 32)
    assert missing.value.code == "job_not_found"
    assert get_job(world.api, ALICE, job.job_id) == world.jobs.get(job.job_id)  # untouched


@pytest.mark.parametrize(
    ("state", "kind"),
    [
        (JobState.QUEUED, "transcript"),
        (JobState.TRANSCRIBING, "transcript"),
        (JobState.TRANSCRIBED, "notes"),
        (JobState.SUMMARIZING, "notes"),
    ],
)
def test_a_result_before_it_is_ready_is_not_ready(world: World, state: JobState, kind: str) -> None:
    job = _job(world, state)

    with pytest.raises(ResultNotReady) as err:
        read_result(world.api, ALICE, job.job_id, kind, "json")

    assert err.value.code == f"{kind}_not_ready"


def test_a_written_result_is_read_and_a_final_job_without_one_has_none(world: World) -> None:
    done = _job(world, JobState.COMPLETED)
    s = world.api.core.settings
    world.blobs.write_bytes(
        result_uri(s, done.job_id, "transcript.txt"), b"Hi.\n", content_type="x"
    )
    failed = _job(world, JobState.FAILED)

    result = read_result(world.api, ALICE, done.job_id, "transcript", "txt")
    with pytest.raises(JobNotFound) as none:
        read_result(world.api, ALICE, failed.job_id, "transcript", "txt")
    with pytest.raises(InvalidInput) as bad:
        read_result(world.api, ALICE, done.job_id, "notes", "srt")

    assert (result.data, result.fmt) == (b"Hi.\n", "txt")
    assert none.value.code == "result_not_found"
    assert bad.value.code == "bad_format"


def test_subtitle_options_render_transcript_json_and_apply_to_srt_and_vtt_only(
    world: World,
) -> None:
    done = _job(world, JobState.TRANSCRIBED)
    s = world.api.core.settings
    transcript = Transcript(
        job_id=done.job_id,
        language="en",
        duration_s=2,
        model="tiny.en",
        segments=[make_segment((0.0, 1.0, " Hello"), (1.0, 2.0, " there."))],
    )
    world.blobs.write_bytes(
        result_uri(s, done.job_id, "transcript.json"),
        transcript.model_dump_json().encode(),
        content_type="application/json",
    )
    one_word = SubtitleOptions(max_line_chars=10, max_lines=1, max_cue_s=1)

    srt = read_result(world.api, ALICE, done.job_id, "transcript", "srt", one_word)
    with pytest.raises(InvalidInput) as notes:
        read_result(world.api, ALICE, done.job_id, "notes", "md", one_word)
    with pytest.raises(InvalidInput) as txt:
        read_result(world.api, ALICE, done.job_id, "transcript", "txt", one_word)

    assert srt.data.decode() == to_srt(transcript, one_word)
    assert srt.data.count(b" --> ") == 2
    assert notes.value.code == txt.value.code == "inapplicable_parameter"
    assert txt.value.message == (
        "max_cue_s, max_line_chars, max_lines: only with format=srt or vtt, not format=txt"
    )


# --- delete ------------------------------------------------------------------------------------


def test_delete_cancels_a_running_job_and_removes_its_audio_results_and_cached_copy(
    world: World,
) -> None:
    s = world.api.core.settings
    execution = world.executions.launch("transcribe-cpu", env={}, task_count=1, timeout_s=60)
    job = _job(world, JobState.TRANSCRIBING, execution=execution, outputs={"log": "gs://x"})
    world.jobs.jobs[job.job_id] = job.model_copy(
        update={"source": job.source.model_copy(update={"sha256": "ab" * 32})}
    )
    ours = [
        result_uri(s, job.job_id, "chunks/0.json"),
        result_uri(s, job.job_id, "transcript.json"),
        f"gs://test-results/cache/{'ab' * 32}/tiny.en/transcript.json",
    ]
    others = [result_uri(s, "a-" + "1" * 32, "transcript.json"), world.upload(ALICE, "b.wav")]
    for uri in ours + others:
        world.blobs.write_bytes(uri, b"{}", content_type="application/json")

    done = delete_job(world.api, ALICE, job.job_id)

    assert (done.cancelled, done.deleted_objects) == (True, len(ours) + 1)  # and the audio
    stored = world.jobs.get(job.job_id)
    assert (stored.state, stored.outputs) == (JobState.CANCELLED, {})
    assert stored.error is not None and stored.error.code == "cancelled"
    assert done.job == stored
    assert execution not in world.executions.alive
    assert sorted(world.blobs.objects) == sorted(others)

    again = delete_job(world.api, ALICE, job.job_id)
    assert (again.cancelled, again.deleted_objects, again.job) == (False, 0, stored)


def test_delete_leaves_a_batch_lanes_execution_running(world: World) -> None:
    execution = world.executions.launch("transcribe-cpu", env={}, task_count=1, timeout_s=60)
    job = _job(world, JobState.TRANSCRIBING, execution=execution)
    world.jobs.jobs[job.job_id] = job.coordinated(batch_lane="lane-1")

    done = delete_job(world.api, ALICE, job.job_id)

    assert done.cancelled and done.job.state == JobState.CANCELLED
    assert execution in world.executions.alive  # it serves other jobs; it skips this one


def test_delete_of_a_finished_job_keeps_its_state_and_only_removes_data(world: World) -> None:
    job = _job(world, JobState.COMPLETED, outputs={"notes": "gs://test-results/jobs/x"})
    notes = result_uri(world.api.core.settings, job.job_id, "notes.json")
    world.blobs.write_bytes(notes, b"{}", content_type="application/json")

    done = delete_job(world.api, ALICE, job.job_id)

    assert (done.cancelled, done.job.state, done.job.outputs) == (False, JobState.COMPLETED, {})
    assert world.blobs.objects == {}  # the notes and the caller's upload
    assert done.deleted_objects == 2


def test_a_job_whose_source_is_not_ours_keeps_that_source(world: World) -> None:
    job = _job(
        world,
        JobState.COMPLETED,
        source=JobSource(uri="gs://someone-elses/a.wav", bytes=10),
    )
    world.blobs.write_bytes("gs://someone-elses/a.wav", wav_bytes(), content_type="audio/wav")

    delete_job(world.api, ALICE, job.job_id)

    assert "gs://someone-elses/a.wav" in world.blobs.objects
