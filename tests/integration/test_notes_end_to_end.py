"""Upload to COMPLETED: a real gsutil upload of espeak-ng speech goes through on_upload,
dispatch, the transcribe job (faster-whisper tiny.en) and the notes function."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.blobs import GcsBlobStore
from common.job_store import FirestoreJobStore
from common.jobs import JobState
from common.notes import NotesDocument, render_markdown
from common.notes_extractive import split_sentences
from common.transcripts import Transcript, result_uri
from tests.data.speech import make_speech
from tests.integration.helpers import gsutil_upload, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TEXT = (
    "Good morning, this is the project meeting. We decided to move the launch to June. "
    "Sarah will update the budget by Friday. Tom will call the supplier tomorrow. "
    "Should we hire a second designer? Nobody knows yet."
)


def test_upload_to_completed_with_both_notes_files(clean_stack, tmp_path: Path, unique: str):  # type: ignore[no-untyped-def]
    s = clean_stack.local.settings
    audio = make_speech(tmp_path / "meeting.wav", TEXT)
    job_id = gsutil_upload(s, audio, f"{unique}/meeting.wav")
    store = FirestoreJobStore(s.project, s.collections.jobs)

    def finished():  # type: ignore[no-untyped-def]
        try:
            job = store.get(job_id)
        except Exception:
            return None
        return job if job.state.is_final else None

    job = wait_for(finished, timeout_s=280, what="the job to finish")
    assert job.state is JobState.COMPLETED, job.error
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
    assert job.outputs["notes_json"] == result_uri(s, job_id, "notes.json")
    assert job.cost_usd == pytest.approx(doc.provenance.cost_usd) and job.cost_usd > 0
