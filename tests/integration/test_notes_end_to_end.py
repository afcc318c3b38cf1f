"""Upload to COMPLETED: a real gsutil upload of espeak-ng speech goes through on_upload,
dispatch, the transcribe job (faster-whisper tiny.en) and the notes function."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from common.domain.jobs import JobState
from common.domain.notes import NotesDocument, render_markdown
from common.domain.transcripts import Transcript, result_uri
from common.gcp.gcs import GcsBlobStore
from common.gcp.job_store import FirestoreJobStore
from common.notes.extractive import split_sentences
from tests.data.speech import make_speech
from tests.integration.helpers import gsutil_upload, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _completed(s, job_id: str):  # type: ignore[no-untyped-def]
    store = FirestoreJobStore(s.project, s.collections.jobs)

    def finished():  # type: ignore[no-untyped-def]
        try:
            job = store.get(job_id)
        except Exception:
            return None
        return job if job.state.is_final else None

    job = wait_for(finished, timeout_s=280, what=f"job {job_id} to finish")
    assert job.state is JobState.COMPLETED, job.error
    return job


TEXT = (
    "Good morning, this is the project meeting. We decided to move the launch to June. "
    "Sarah will update the budget by Friday. Tom will call the supplier tomorrow. "
    "Should we hire a second designer? Nobody knows yet."
)


def test_upload_to_completed_with_both_notes_files(clean_stack, tmp_path: Path, unique: str):  # type: ignore[no-untyped-def]
    s = clean_stack.local.settings
    audio = make_speech(tmp_path / "meeting.wav", TEXT)
    job = _completed(s, gsutil_upload(s, audio, f"{unique}/meeting.wav"))
    job_id = job.job_id
    blobs = GcsBlobStore(s.project)
    transcript = Transcript.model_validate_json(
        blobs.read_bytes(result_uri(s, job_id, "transcript.json"))
    )
    doc = NotesDocument.model_validate_json(blobs.read_bytes(result_uri(s, job_id, "notes.json")))
    md = blobs.read_bytes(result_uri(s, job_id, "notes.md")).decode()
    assert md == render_markdown(doc)
    assert doc.provenance.provider == "openai" and doc.provenance.model == "local-extractive"
    # The notes come from what was transcribed, not from a template.
    sentences = set(split_sentences(transcript.text))
    assert doc.notes.key_points and set(doc.notes.key_points) <= sentences
    assert job.outputs["notes.json"] == result_uri(s, job_id, "notes.json")
    assert job.cost_usd == pytest.approx(doc.provenance.cost_usd) and job.cost_usd > 0


def test_identical_audio_is_paid_once_per_owner_and_nothing_crosses_owners(  # type: ignore[no-untyped-def]
    clean_stack, tmp_path: Path, unique: str
):
    """The same audio three times: twice by the upload owner (gsutil), once by an API caller.
    Whisper runs once (content cache); the notes are paid once per owner; no result of one
    owner's job names another's."""
    import json

    import requests

    from common.edge.auth import issue_hs256

    s = clean_stack.local.settings
    audio = make_speech(tmp_path / "meeting.wav", TEXT)
    blobs = GcsBlobStore(s.project)
    final = functools.partial(_completed, s)

    first = final(gsutil_upload(s, audio, f"{unique}/first.wav"))
    again = final(gsutil_upload(s, audio, f"{unique}/again.wav"))
    # An API caller submits the same bytes (their own upload).
    api = clean_stack.local.function_url("api")
    secret = s.auth.jwt_secret.get_secret_value()
    headers = {"Authorization": f"Bearer {issue_hs256(secret, f'carol-{unique}')}"}
    ticket = requests.post(
        f"{api}/v1/uploads",
        json={"filename": "meeting.wav", "content_type": "audio/wav"},
        headers=headers,
    ).json()
    requests.put(ticket["upload_url"], data=audio.read_bytes(), headers=ticket["headers"])
    submitted = requests.post(
        f"{api}/v1/jobs", json={"audio_url": ticket["audio_url"]}, headers=headers
    )
    assert submitted.status_code == 202, submitted.text
    carol = final(submitted.json()["job_id"])

    assert first.cost_usd > 0 and carol.cost_usd > 0  # each owner pays for their notes once
    assert again.cost_usd == 0 and again.usage["llm_calls"] == 0
    notes = NotesDocument.model_validate_json(
        blobs.read_bytes(result_uri(s, again.job_id, "notes.json"))
    )
    assert notes.provenance.from_cache and notes.job_id == again.job_id
    for job in (again, carol):
        assert job.usage.get("transcribe_cache_hits") == 1  # Whisper ran for the first only
    for job, others in ((carol, (first, again)), (again, (carol,))):
        for name in ("transcript.json", "notes.json", "notes.md", "transcript.txt"):
            text = blobs.read_bytes(result_uri(s, job.job_id, name)).decode()
            for other in others:
                assert other.job_id not in text, (name, other.job_id)
    assert (
        json.loads(blobs.read_bytes(result_uri(s, carol.job_id, "transcript.json")))["job_id"]
        == carol.job_id
    )
