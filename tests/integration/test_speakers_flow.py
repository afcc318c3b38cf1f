"""Speakers through the local stack: a two-voice recording is diarized, its speakers are named
through the running API and through the CLI, and every rendering (stored and served) and the
notes show the names; a bad speakers option is refused on both submission paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from common.config.settings import Settings
from common.domain.jobs import Job, JobState
from common.domain.notes import NOTES_JSON, NOTES_MD, NotesDocument
from common.domain.transcripts import Transcript, result_uri
from common.edge.auth import issue_hs256
from common.gcp.gcs import GcsBlobStore
from common.gcp.job_store import FirestoreJobStore
from tests.data.conversation import make_conversation
from tests.data.speech import make_speech
from tests.integration.helpers import inbox_job_id, wait_for

pytestmark = pytest.mark.integration

SCRIPT = str(Path(sys.executable).with_name("audionotes"))
# Two voices taking turns (tests/data/conversation.py: a low male voice, a high female one).
TURNS = [
    ("A", "Good morning everyone. Let us start with the budget for the new library."),
    ("B", "Thanks. The heating costs went up, so we should delay the new computers."),
    ("A", "Agreed. Please write the plan for the roof repair by Friday."),
    ("B", "I will send the plan to the council on Thursday afternoon."),
]


@pytest.fixture
def token(settings: Settings, unique: str) -> str:
    return issue_hs256(settings.auth.jwt_secret.get_secret_value(), f"speakers-{unique}")


@pytest.fixture
def cli(clean_stack: Any, token: str) -> Any:
    env = {**os.environ, **clean_stack.local.environment(), "AUDIONOTES_TOKEN": token}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([SCRIPT, *args], env=env, capture_output=True, text=True, timeout=600)

    return run


def _two_speakers(folder: Path) -> Path:
    meeting = folder / "meeting.wav"
    make_conversation(meeting, TURNS)
    return meeting


def _blob(settings: Settings, job_id: str, name: str) -> bytes:
    return GcsBlobStore(settings.project).read_bytes(result_uri(settings, job_id, name))


def _state(store: FirestoreJobStore, job_id: str, states: tuple[JobState, ...]) -> Job | None:
    try:
        job = store.get(job_id)
    except Exception:  # not written yet
        return None
    return job if job.state in states else None


def test_a_two_speaker_meeting_is_diarized_and_named_through_the_api_and_the_cli(
    clean_stack: Any,
    settings: Settings,
    store: FirestoreJobStore,
    token: str,
    cli: Any,
    tmp_path: Path,
) -> None:
    submitted = cli("submit", str(_two_speakers(tmp_path)), "--speakers", "2", "--wait")
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    job = store.get(job_id)
    assert job.state is JobState.COMPLETED and job.options.speakers == "2"
    assert job.transcription is not None
    assert sorted(s.speaker for s in job.transcription.speakers) == ["SPEAKER_1", "SPEAKER_2"]
    transcript = Transcript.model_validate_json(_blob(settings, job_id, "transcript.json"))
    assert transcript.turns and transcript.turns[0].speaker == "SPEAKER_1"  # the first voice
    assert {s.speaker for s in transcript.segments} == {"SPEAKER_1", "SPEAKER_2"}

    # Through the API.
    api = clean_stack.local.function_url("api") + f"/v1/jobs/{job_id}"
    auth = {"Authorization": f"Bearer {token}"}
    named = requests.put(
        f"{api}/speakers", json={"SPEAKER_1": "Priya Patel"}, headers=auth, timeout=30
    )
    assert named.status_code == 200, named.text
    answer = named.json()
    assert answer["speaker_names"] == {"SPEAKER_1": "Priya Patel"}
    assert {s["speaker"]: s["name"] for s in answer["speakers"]} == {
        "SPEAKER_1": "Priya Patel",
        "SPEAKER_2": None,
    }
    assert all(s["talk_s"] > 1 and s["turns"] >= 1 for s in answer["speakers"])

    def served(kind: str, fmt: str) -> str:
        response = requests.get(f"{api}/{kind}?format={fmt}", headers=auth, timeout=30)
        assert response.status_code == 200, response.text
        return response.text

    txt = served("transcript", "txt")
    assert txt.startswith("Priya Patel: ") and "\nSPEAKER_2: " in txt, txt
    assert "<v Priya Patel>" in served("transcript", "vtt")
    assert "Priya Patel: " in served("transcript", "srt")
    rttm = [line.split() for line in served("transcript", "rttm").splitlines()]
    assert {row[7] for row in rttm} == {"Priya_Patel", "SPEAKER_2"}
    assert all(len(row) == 10 and row[:3] == ["SPEAKER", job_id, "1"] for row in rttm)
    assert json.loads(served("transcript", "json"))["speaker_names"] == {"SPEAKER_1": "Priya Patel"}
    # The stored files were rewritten too, not only rendered for the answer.
    assert _blob(settings, job_id, "transcript.txt").decode() == txt
    notes = NotesDocument.model_validate_json(_blob(settings, job_id, NOTES_JSON))
    assert notes.speaker_names == {"SPEAKER_1": "Priya Patel"}
    assert served("notes", "md") == _blob(settings, job_id, NOTES_MD).decode()
    again = requests.put(
        f"{api}/speakers", json={"SPEAKER_1": "Priya Patel"}, headers=auth, timeout=30
    )
    assert again.json() == answer

    # Through the CLI: SPEAKER_1= gives the label back.
    renamed = cli("speakers", job_id, "SPEAKER_2=Sam", "SPEAKER_1=")
    assert renamed.returncode == 0, renamed.stderr
    rows = [line.split("\t") for line in renamed.stdout.splitlines()]
    assert rows[0] == ["speaker", "name", "talk", "share", "turns"]
    assert {row[0]: row[1] for row in rows[1:]} == {"SPEAKER_1": "-", "SPEAKER_2": "Sam"}
    got = cli("get", job_id, "--format", "txt")
    assert got.returncode == 0, got.stderr
    assert "Sam: " in got.stdout and "Priya" not in got.stdout
    as_rttm = cli("get", job_id, "--format", "rttm")
    assert {line.split()[7] for line in as_rttm.stdout.splitlines()} == {"SPEAKER_1", "Sam"}
    assert store.get(job_id).speaker_names == {"SPEAKER_2": "Sam"}

    # Another caller sees no such job, and changes nothing.
    other = issue_hs256(settings.auth.jwt_secret.get_secret_value(), "someone-else")
    refused = requests.put(
        f"{api}/speakers",
        json={"SPEAKER_1": "Mallory"},
        headers={"Authorization": f"Bearer {other}"},
        timeout=30,
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (404, "job_not_found")
    assert store.get(job_id).speaker_names == {"SPEAKER_2": "Sam"}


def test_a_job_without_speakers_refuses_names_with_409(
    clean_stack: Any,
    settings: Settings,
    store: FirestoreJobStore,
    token: str,
    cli: Any,
    tmp_path: Path,
) -> None:
    speech = make_speech(tmp_path / "memo.wav", "Note to self. Buy milk on the way home.")
    submitted = cli("submit", str(speech), "--speakers", "none", "--wait")
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    response = requests.put(
        clean_stack.local.function_url("api") + f"/v1/jobs/{job_id}/speakers",
        json={"SPEAKER_1": "Me"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert (response.status_code, response.json()["error"]["code"]) == (409, "no_speakers")
    assert store.get(job_id).options.speakers == "none"


def test_speakers_metadata_on_an_upload_and_a_bad_value_fails_it_with_bad_speakers(
    settings: Settings, store: FirestoreJobStore, unique: str, tmp_path: Path
) -> None:
    speech = make_speech(tmp_path / "short.wav", "One two three.")
    jobs = {}
    for name, value in (("ranged.wav", "2-5"), ("backwards.wav", "5-2")):
        path = f"{unique}/{name}"
        subprocess.run(
            [
                "gsutil", "-q", "-h", f"x-goog-meta-speakers:{value}",
                "cp", str(speech), settings.inbox_uri + path,
            ],
            check=True,
        )  # fmt: skip
        jobs[value] = inbox_job_id(settings, path)
    every = tuple(JobState)
    ranged = wait_for(lambda: _state(store, jobs["2-5"], every), what="the upload's job")
    assert ranged.options.speakers == "2-5"
    refused = wait_for(
        lambda: _state(store, jobs["5-2"], (JobState.FAILED,)), what="the refused upload"
    )
    assert refused.error is not None and refused.error.code == "bad_speakers"
    assert refused.error.message.startswith("x-goog-meta-speakers: ")
    assert refused.execution is None


@pytest.mark.parametrize("speakers", ["5-2", "21", "lots"])
def test_the_api_refuses_bad_speakers_with_422(clean_stack: Any, token: str, speakers: str) -> None:
    response = requests.post(
        clean_stack.local.function_url("api") + "/v1/jobs",
        headers={"Authorization": f"Bearer {token}"},
        json={"audio_url": "https://127.0.0.1:9/a.wav", "speakers": speakers},
        timeout=30,
    )
    assert (response.status_code, response.json()["error"]["code"]) == (422, "bad_speakers")
