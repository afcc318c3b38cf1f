"""Speakers on the API: PUT /v1/jobs/{id}/speakers rewrites every stored rendering of the
transcript and the notes with the names (and nothing else), reads show the job's names even when
a rewrite died half-way, and the speakers option is refused with bad_speakers wherever it
arrives (body, upload metadata, CLI)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from flask.testing import FlaskClient

from audionotes import cli
from common.domain.errors import InvalidInput, JobNotFound
from common.domain.jobs import Job, JobOptions, JobState
from common.domain.notes import (
    NOTES_JSON,
    NOTES_MD,
    Notes,
    NotesDocument,
    Provenance,
    render_markdown,
)
from common.domain.speakers import Turn
from common.domain.subtitles import SubtitleOptions
from common.domain.transcript_files import write_outputs
from common.domain.transcripts import Transcript, result_uri, summarize, with_speakers
from common.edge.auth import Principal
from functions.api import build_api
from functions.api.http import create_app
from functions.api.service import (
    ApiServices,
    NoSpeakers,
    ResultNotReady,
    name_speakers,
    read_result,
)
from functions.bootstrap import Services
from functions.uploads import StorageObject, UploadOutcome, handle_upload, options_from_metadata
from tests.fakes import (
    FakeLauncher,
    MemoryBlobStore,
    MemoryJobStore,
    RecordingPublisher,
    make_segment,
    settings,
    wav_bytes,
)
from tests.unit.test_api_app import RecordingLimiter, _auth, _error, _settings

ALICE = Principal(subject="alice", issuer=None, algorithm="HS256")
BOB = Principal(subject="bob", issuer=None, algorithm="HS256")
JOB_ID = f"a-{7:032d}"
FORMATS = ("json", "txt", "srt", "vtt", "tsv", "rttm")


def _transcript(job_id: str = JOB_ID, *, turns: bool = True) -> Transcript:
    """Two speakers: SPEAKER_1 greets, SPEAKER_2 answers, SPEAKER_1 closes."""
    segments = [
        make_segment((0.0, 0.5, " Good"), (0.5, 1.0, " morning.")),
        make_segment((1.5, 2.0, " Hello"), (2.0, 2.5, " there.")),
        make_segment((3.0, 3.5, " Bye"), (3.5, 4.0, " now.")),
    ]
    spoken = [
        Turn(start=0.0, end=1.1, speaker="SPEAKER_1"),
        Turn(start=1.4, end=2.6, speaker="SPEAKER_2"),
        Turn(start=2.9, end=4.1, speaker="SPEAKER_1"),
    ]
    return Transcript(
        job_id=job_id,
        language="en",
        duration_s=4.1,
        model="tiny.en",
        segments=with_speakers(segments, spoken) if turns else segments,
        turns=spoken if turns else [],
    )


def _notes(job_id: str = JOB_ID) -> NotesDocument:
    return NotesDocument(
        job_id=job_id,
        template="meeting",
        language="en",
        created_at=datetime(2026, 12, 2, 12, 0, tzinfo=UTC),
        notes=Notes(
            title="Stand-up",
            summary="SPEAKER_1 greets SPEAKER_2.",
            key_points=["SPEAKER_2 answers"],
            action_items=[],
            decisions=[],
            open_questions=[],
            topics=[],
            people=[],
            diary_entry="",
        ),
        provenance=Provenance(provider="extractive", model="local-extractive"),
        speakers=_transcript().speakers,
    )


@dataclass
class World:
    api: ApiServices
    jobs: MemoryJobStore
    blobs: MemoryBlobStore

    def uri(self, name: str, job_id: str = JOB_ID) -> str:
        return result_uri(self.api.core.settings, job_id, name)

    def text(self, name: str, job_id: str = JOB_ID) -> str:
        return self.blobs.objects[self.uri(name, job_id)].decode()

    def job(
        self,
        state: JobState = JobState.COMPLETED,
        *,
        turns: bool = True,
        notes: bool = True,
        job_id: str = JOB_ID,
    ) -> Job:
        """A job of Alice's in ``state`` with its stored transcript (and notes)."""
        transcript = _transcript(job_id, turns=turns)
        job = Job.new(
            job_id=job_id,
            owner=ALICE.subject,
            source={"uri": "gs://test-inbox/uploads/a.wav", "generation": "1"},  # type: ignore[arg-type]
            options=JobOptions(),
            retention_days=1,
        ).model_copy(update={"state": state})
        if state in (JobState.TRANSCRIBED, JobState.SUMMARIZING, JobState.COMPLETED):
            job = job.model_copy(update={"transcription": summarize(transcript)})
            write_outputs(transcript, self.api.core.settings, self.blobs)
        if notes and state is JobState.COMPLETED:
            doc = _notes(job_id)
            self.blobs.write_bytes(
                self.uri(NOTES_JSON, job_id),
                doc.model_dump_json(indent=2).encode(),
                content_type="application/json",
            )
            self.blobs.write_bytes(
                self.uri(NOTES_MD, job_id), render_markdown(doc).encode(), content_type="x"
            )
        self.jobs.jobs[job_id] = job
        return job


@pytest.fixture
def world() -> World:
    jobs, blobs = MemoryJobStore(), MemoryBlobStore()
    core = Services(settings=settings(), jobs=jobs, publisher=RecordingPublisher(), blobs=blobs)
    return World(build_api(core, canceller=FakeLauncher()), jobs, blobs)


# --- the rename --------------------------------------------------------------------------------


def test_naming_a_speaker_rewrites_every_stored_rendering_and_the_notes(world: World) -> None:
    world.job()

    named = name_speakers(world.api, ALICE, JOB_ID, {"SPEAKER_1": "Priya Patel"})

    assert named.job.speaker_names == {"SPEAKER_1": "Priya Patel"}
    assert world.jobs.get(JOB_ID).speaker_names == {"SPEAKER_1": "Priya Patel"}
    assert [(t.speaker, t.name, t.turns) for t in named.speakers] == [
        ("SPEAKER_1", "Priya Patel", 2),
        ("SPEAKER_2", None, 1),
    ]
    assert world.text("transcript.txt") == (
        "Priya Patel: Good morning.\nSPEAKER_2: Hello there.\nPriya Patel: Bye now.\n"
    )
    assert "<v Priya Patel>Good morning." in world.text("transcript.vtt")
    assert "<v SPEAKER_2>Hello there." in world.text("transcript.vtt")
    assert "\nPriya Patel: Good morning.\n" in world.text("transcript.srt")
    rttm = world.text("transcript.rttm").splitlines()
    assert [line.split()[7] for line in rttm] == ["Priya_Patel", "SPEAKER_2", "Priya_Patel"]
    assert world.text("transcript.tsv").splitlines()[1].endswith("\tPriya Patel")
    stored = Transcript.model_validate_json(world.text("transcript.json"))
    assert stored.speaker_names == {"SPEAKER_1": "Priya Patel"}
    assert stored.segments == _transcript().segments  # the words are not touched
    doc = NotesDocument.model_validate_json(world.text(NOTES_JSON))
    assert doc.speaker_names == {"SPEAKER_1": "Priya Patel"}
    assert [s.name for s in doc.speakers] == ["Priya Patel", None]
    assert doc.notes == _notes().notes and doc.provenance == _notes().provenance
    assert world.text(NOTES_MD) == render_markdown(doc)


def test_a_repeated_put_changes_nothing_and_a_null_or_empty_name_gives_the_label_back(
    world: World,
) -> None:
    world.job()
    name_speakers(world.api, ALICE, JOB_ID, {"SPEAKER_1": "Priya", "SPEAKER_2": "Sam"})
    before, job = dict(world.blobs.objects), world.jobs.get(JOB_ID)

    again = name_speakers(world.api, ALICE, JOB_ID, {"SPEAKER_1": "Priya", "SPEAKER_2": "Sam"})

    assert again.job == job  # not even updated_at moved
    assert world.blobs.objects == before

    name_speakers(world.api, ALICE, JOB_ID, {"SPEAKER_2": None})
    assert world.jobs.get(JOB_ID).speaker_names == {"SPEAKER_1": "Priya"}
    name_speakers(world.api, ALICE, JOB_ID, {"SPEAKER_1": ""})
    assert world.jobs.get(JOB_ID).speaker_names == {}
    assert world.text("transcript.txt").startswith("SPEAKER_1: Good morning.\nSPEAKER_2:")


def test_a_job_without_notes_yet_gets_its_transcript_renamed(world: World) -> None:
    world.job(JobState.TRANSCRIBED)

    name_speakers(world.api, ALICE, JOB_ID, {"SPEAKER_2": "Sam"})

    assert "Sam: Hello there." in world.text("transcript.txt")
    assert world.uri(NOTES_JSON) not in world.blobs.objects


def test_another_callers_job_is_not_found_and_nothing_changes(world: World) -> None:
    job = world.job()
    before = dict(world.blobs.objects)

    with pytest.raises(JobNotFound) as err:
        name_speakers(world.api, BOB, JOB_ID, {"SPEAKER_1": "Mallory"})

    assert (err.value.code, err.value.message) == ("job_not_found", f"no job {JOB_ID}")
    assert world.jobs.get(JOB_ID) == job
    assert world.blobs.objects == before


@pytest.mark.parametrize(
    "state", [JobState.QUEUED, JobState.TRANSCRIBING, JobState.FAILED, JobState.CANCELLED]
)
def test_a_job_without_a_transcript_yet_is_a_conflict(world: World, state: JobState) -> None:
    world.job(state)
    with pytest.raises(ResultNotReady) as err:
        name_speakers(world.api, ALICE, JOB_ID, {"SPEAKER_1": "Priya"})
    assert err.value.code == "transcript_not_ready"
    assert state.value in err.value.message


def test_a_transcript_without_speakers_is_a_conflict_that_says_so(world: World) -> None:
    job = world.job(turns=False)
    with pytest.raises(NoSpeakers) as err:
        name_speakers(world.api, ALICE, JOB_ID, {"SPEAKER_1": "Priya"})
    assert err.value.code == "no_speakers"
    assert "speakers 'none'" in err.value.message
    assert world.jobs.get(JOB_ID) == job


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"SPEAKER_3": "Priya"}, "unknown_speaker"),
        ({"SPEAKER_1": "bell\x07"}, "bad_speaker_name"),
        ({"SPEAKER_1": "x" * 61}, "bad_speaker_name"),
        ({}, "no_speakers_named"),
        ({"SPEAKER_1": "Priya", "SPEAKER_2": "priya"}, "duplicate_speaker_name"),
        ({"SPEAKER_2": "Sam"}, "duplicate_speaker_name"),  # SPEAKER_1 is Sam already
    ],
)
def test_bad_names_are_refused_before_anything_is_written(
    world: World, change: dict[str, str | None], code: str
) -> None:
    world.job()
    name_speakers(world.api, ALICE, JOB_ID, {"SPEAKER_1": "Sam"})
    before, job = dict(world.blobs.objects), world.jobs.get(JOB_ID)

    with pytest.raises(InvalidInput) as err:
        name_speakers(world.api, ALICE, JOB_ID, change)

    assert err.value.code == code
    assert (world.jobs.get(JOB_ID), world.blobs.objects) == (job, before)


# --- reads show the job's names ----------------------------------------------------------------


def test_reads_show_the_jobs_names_when_a_rewrite_died_after_the_job_was_written(
    world: World,
) -> None:
    world.job()
    # The job document written, then the rewrite died: every stored file has no names yet.
    world.jobs.update(
        JOB_ID, lambda j: j.model_copy(update={"speaker_names": {"SPEAKER_2": "Sam"}})
    )

    def read(kind: str, fmt: str, subtitles: SubtitleOptions | None = None) -> str:
        return read_result(world.api, ALICE, JOB_ID, kind, fmt, subtitles).data.decode()

    assert read("transcript", "txt").splitlines()[1] == "Sam: Hello there."
    assert "<v Sam>Hello there." in read("transcript", "vtt")
    assert "Sam: Hello" in read("transcript", "srt", SubtitleOptions(max_line_chars=20))
    assert read("transcript", "rttm").splitlines()[1].split()[7] == "Sam"
    assert Transcript.model_validate_json(read("transcript", "json")).speaker_names == {
        "SPEAKER_2": "Sam"
    }
    doc = NotesDocument.model_validate_json(read("notes", "json"))
    assert doc.speaker_names == {"SPEAKER_2": "Sam"}
    assert read("notes", "md") == render_markdown(doc)
    # Once a PUT finishes the rewrite, the stored files are served as they are.
    name_speakers(world.api, ALICE, JOB_ID, {"SPEAKER_2": "Sam"})
    for fmt in FORMATS:
        assert read("transcript", fmt) == world.text(f"transcript.{fmt}")


def test_a_transcript_json_written_last_marks_renderings_of_older_names(world: World) -> None:
    """A rewrite that died after transcript.txt: the JSON (written last) still has the old
    names, so the new rendering is not trusted blindly and both agree with the job."""
    world.job()
    name_speakers(world.api, ALICE, JOB_ID, {"SPEAKER_1": "Priya"})
    world.jobs.update(JOB_ID, lambda j: j.model_copy(update={"speaker_names": {}}))

    txt = read_result(world.api, ALICE, JOB_ID, "transcript", "txt").data.decode()

    assert txt.startswith("SPEAKER_1: Good morning.")
    assert "Priya" in world.text("transcript.txt")  # the stored file, not yet rewritten


# --- over HTTP ---------------------------------------------------------------------------------


def _http() -> tuple[FlaskClient, World]:
    s = _settings()
    jobs, blobs = MemoryJobStore(), MemoryBlobStore()
    core = Services(settings=s, jobs=jobs, publisher=RecordingPublisher(), blobs=blobs)  # type: ignore[arg-type]
    api = dataclasses.replace(build_api(core, canceller=FakeLauncher()), limiter=RecordingLimiter())
    return create_app(s, lambda: api).test_client(), World(api, jobs, blobs)


def test_put_speakers_answers_each_speakers_talk_time_and_the_job_shows_them() -> None:
    client, world = _http()
    world.job()
    path = f"/v1/jobs/{JOB_ID}/speakers"

    response = client.put(path, json={"SPEAKER_1": "Priya", "SPEAKER_2": None}, headers=_auth())

    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "job_id": JOB_ID,
        "speakers": [
            {"speaker": "SPEAKER_1", "name": "Priya", "talk_s": 2.3, "share": 0.6571, "turns": 2},
            {"speaker": "SPEAKER_2", "name": None, "talk_s": 1.2, "share": 0.3429, "turns": 1},
        ],
        "speaker_names": {"SPEAKER_1": "Priya"},
    }
    view = client.get(f"/v1/jobs/{JOB_ID}", headers=_auth()).get_json()
    assert view["speaker_names"] == {"SPEAKER_1": "Priya"}
    assert view["options"]["speakers"] == "auto"  # a meeting's default
    assert [(s["speaker"], s["name"]) for s in view["transcription"]["speakers"]] == [
        ("SPEAKER_1", "Priya"),
        ("SPEAKER_2", None),
    ]
    rttm = client.get(f"/v1/jobs/{JOB_ID}/transcript?format=rttm", headers=_auth())
    assert rttm.content_type == "text/plain; charset=utf-8"
    assert rttm.get_data(as_text=True).startswith(f"SPEAKER {JOB_ID} 1 0.000 1.100 <NA> <NA> Priya")
    refused = client.get(f"/v1/jobs/{JOB_ID}/transcript?format=rttm&max_lines=1", headers=_auth())
    assert _error(refused) == (400, "inapplicable_parameter")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"BOB": "x"}, 422, "unknown_speaker"),
        ({"SPEAKER_0": "x"}, 422, "unknown_speaker"),
        ({"SPEAKER_9": "x"}, 422, "unknown_speaker"),
        ({"SPEAKER_1": "x" * 61}, 422, "bad_speaker_name"),
        ({"SPEAKER_1": "tab\there"}, 422, "bad_speaker_name"),
        ({"SPEAKER_1": 5}, 422, "wrong_type"),
        ({f"SPEAKER_{n}": f"n{n}" for n in range(1, 22)}, 422, "invalid_value"),
        ({}, 422, "no_speakers_named"),
        ({"SPEAKER_1": "Priya", "SPEAKER_2": "PRIYA"}, 422, "duplicate_speaker_name"),
        (["SPEAKER_1"], 422, "wrong_type"),
    ],
)
def test_put_speakers_refusals(body: object, status: int, code: str) -> None:
    client, world = _http()
    job = world.job()
    response = client.put(f"/v1/jobs/{JOB_ID}/speakers", json=body, headers=_auth())
    assert _error(response) == (status, code), response.get_json()
    assert world.jobs.get(JOB_ID) == job


def test_put_speakers_statuses_for_other_callers_missing_jobs_and_conflicts() -> None:
    client, world = _http()
    world.job()
    world.job(JobState.TRANSCRIBING, job_id=f"a-{8:032d}")
    world.job(turns=False, job_id=f"a-{9:032d}")
    name = {"SPEAKER_1": "Priya"}

    def put(job_id: str, subject: str = "alice") -> tuple[int, str]:
        return _error(client.put(f"/v1/jobs/{job_id}/speakers", json=name, headers=_auth(subject)))

    assert put(JOB_ID, "bob") == (404, "job_not_found")
    assert put(f"a-{1:032d}") == (404, "job_not_found")
    assert put(f"a-{8:032d}") == (409, "transcript_not_ready")
    assert put(f"a-{9:032d}") == (409, "no_speakers")
    as_text = client.put(f"/v1/jobs/{JOB_ID}/speakers", data="SPEAKER_1=x", headers=_auth())
    assert _error(as_text) == (415, "unsupported_media_type")
    assert world.jobs.get(JOB_ID).speaker_names == {}


@pytest.mark.parametrize(
    ("speakers", "stored"),
    [(3, "3"), (19.0, "19"), ("2-5", "2-5"), ("AUTO", "auto"), ("none", "none")],
)
def test_create_job_takes_a_count_or_a_range_of_speakers(speakers: object, stored: str) -> None:
    from functions.api.schemas import CreateJob

    body = CreateJob.model_validate({"audio_url": "gs://b/o.wav", "speakers": speakers})
    assert body.speakers == stored
    assert JobOptions(**body.model_dump(exclude={"audio_url"})).speakers == stored


@pytest.mark.parametrize("speakers", ["5-2", "21", 0, "lots", "2-"])
def test_create_job_refuses_bad_speakers_with_bad_speakers(speakers: object) -> None:
    client, world = _http()
    response = client.post(
        "/v1/jobs",
        json={"audio_url": "gs://test-inbox/a.wav", "speakers": speakers},
        headers=_auth(),
    )
    assert _error(response) == (422, "bad_speakers")
    assert "speakers" in response.get_json()["error"]["message"]
    assert world.jobs.jobs == {}


# --- uploads and the CLI -----------------------------------------------------------------------


def test_upload_metadata_takes_speakers_and_a_bad_value_fails_the_job_with_bad_speakers() -> None:
    options, problem = options_from_metadata({"speakers": " 2-5 "}, settings())
    assert problem is None and options.speakers == "2-5"
    assert options_from_metadata({"speakers": "none"}, settings())[0].speaker_spec.enabled is False

    s = settings()
    jobs, blobs = MemoryJobStore(), MemoryBlobStore()
    blobs.write_bytes("gs://test-inbox/uploads/a.wav", wav_bytes(), content_type="audio/wav")
    svc = Services(settings=s, jobs=jobs, publisher=cast(Any, None), blobs=blobs)
    obj = StorageObject(
        bucket="test-inbox",
        name="uploads/a.wav",
        generation="1",
        size=len(blobs.objects["gs://test-inbox/uploads/a.wav"]),
        metadata={"speakers": "9-3", "priority": "high"},
    )

    assert handle_upload(obj, svc) is UploadOutcome.REJECTED
    [job] = jobs.jobs.values()
    assert job.state is JobState.FAILED and job.error is not None
    assert job.error.code == "bad_speakers"
    assert job.error.message.startswith("x-goog-meta-speakers: ")


def test_cli_speakers_puts_the_names_and_prints_a_row_per_speaker(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sent: list[tuple[str, str, object]] = []
    answer = {
        "job_id": JOB_ID,
        "speakers": [t.model_dump() for t in _transcript().speakers],
        "speaker_names": {},
    }
    answer["speakers"][0]["name"] = "Priya"  # type: ignore[index]

    def call(self: cli.Client, method: str, path: str, **kwargs: Any) -> object:
        sent.append((method, path, kwargs.get("json")))
        return answer

    monkeypatch.setattr(cli.Client, "json", call)
    argv = ["--api-url", "http://x", "--token", "t", "speakers", JOB_ID]
    assert cli.main([*argv, "SPEAKER_1=Priya", "SPEAKER_2="]) == 0

    assert sent == [
        ("PUT", f"/v1/jobs/{JOB_ID}/speakers", {"SPEAKER_1": "Priya", "SPEAKER_2": None})
    ]
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert rows == [
        ["speaker", "name", "talk", "share", "turns"],
        ["SPEAKER_1", "Priya", "2.3s", "66%", "2"],
        ["SPEAKER_2", "-", "1.2s", "34%", "1"],
    ]
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["speakers", JOB_ID, "Priya"])


def test_cli_submit_sends_speakers_and_refuses_a_bad_value_before_any_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bodies: list[object] = []

    def call(self: cli.Client, method: str, path: str, **kwargs: Any) -> object:
        bodies.append(kwargs.get("json"))
        return {"job_id": JOB_ID}

    monkeypatch.setattr(cli.Client, "json", call)
    argv = ["--api-url", "http://x", "--token", "t", "submit", "gs://b/a.wav"]
    assert cli.main([*argv, "--speakers", "2-5"]) == 0
    assert bodies == [{"audio_url": "gs://b/a.wav", "priority": "normal", "speakers": "2-5"}]
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["submit", "gs://b/a.wav", "--speakers", "5-2"])


def test_the_documents_speakers_pattern_is_what_the_server_takes() -> None:
    """The fuzzer holds the served document to the server: a value it allows is accepted."""
    import re

    from common.domain.errors import InvalidInput as Refused
    from common.domain.speakers import SpeakerSpec
    from functions.api.openapi import document

    prop = document()["components"]["schemas"]["CreateJob"]["properties"]["speakers"]
    string, integer = prop["anyOf"][0], prop["anyOf"][1]
    assert (integer["minimum"], integer["maximum"]) == (1, 20)
    numbers = [str(n) for n in range(0, 23)] + ["01"]
    values = ["auto", "none", *numbers, *(f"{a}-{b}" for a in numbers for b in numbers)]
    for value in values:
        try:
            SpeakerSpec.parse(value)
            taken = True
        except Refused:
            taken = False
        assert bool(re.match(string["pattern"], value)) is taken, value


def test_a_json_integer_written_with_a_fraction_is_a_count() -> None:
    """JSON Schema's integer includes 19.0 (the fuzzer sent it): a count, not a wrong type."""
    client, world = _http()
    response = client.post(
        "/v1/jobs", json={"audio_url": "gs://test-inbox/a.wav", "speakers": 19.0}, headers=_auth()
    )
    # Past every check of the body: refused only because this caller owns no such upload.
    assert _error(response) == (403, "source_forbidden")
    assert world.jobs.jobs == {}
