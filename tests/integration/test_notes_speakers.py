"""Notes by speaker in the running stack: a transcript with turns and a job with names; the
notes function sends turn lines to the local OpenAI-compatible server and writes labels in
notes.json, talk time per speaker and the names, and notes.md with the names."""

from __future__ import annotations

from typing import Any

import pytest

from common.domain.jobs import JobState
from common.domain.notes import render_markdown
from common.domain.speakers import Turn
from common.domain.transcripts import Transcript, result_uri, with_speakers
from tests.conftest import DATA
from tests.integration.test_notes_flow import Harness

pytestmark = pytest.mark.integration


@pytest.fixture
def h(clean_stack: Any) -> Harness:
    return Harness(clean_stack)


def meeting_with_speakers(job_id: str) -> Transcript:
    """The real meeting, said by two people: SPEAKER_2 from "Finally, ..." (48.6 s) on."""
    t = Transcript.model_validate_json((DATA / "meeting_transcript.json").read_text())
    turns = [
        Turn(start=0.0, end=48.0, speaker="SPEAKER_1"),
        Turn(start=48.5, end=t.duration_s, speaker="SPEAKER_2"),
    ]
    return t.model_copy(
        update={"job_id": job_id, "segments": with_speakers(t.segments, turns), "turns": turns}
    )


def test_notes_carry_labels_talk_time_and_the_jobs_names(h: Harness, unique: str) -> None:
    job_id = f"s-{unique}"
    transcript = meeting_with_speakers(job_id)
    h.transcribed_job(job_id, transcript.model_dump_json().encode())
    names = {"SPEAKER_2": "Priya"}
    h.jobs.update(job_id, lambda j: j.model_copy(update={"speaker_names": names}))
    h.publish(job_id)
    job = h.final(job_id)

    assert job.state is JobState.COMPLETED, job.error
    doc = h.notes(job_id)
    assert doc.provenance.model == "local-extractive"  # the model's answer, not the fallback
    assert doc.speaker_names == names
    assert [(t.speaker, t.name) for t in doc.speakers] == [
        ("SPEAKER_1", None),
        ("SPEAKER_2", "Priya"),
    ]
    items = {a.task: a for a in doc.notes.action_items}
    mine = items["Send the meeting notes to the whole team tomorrow"]
    assert (mine.owner, mine.raised_by) == ("SPEAKER_2", "SPEAKER_2")
    assert items["Review the cloud bill and propose savings by Friday"].owner == "David"
    assert {d.raised_by for d in doc.notes.decisions} == {"SPEAKER_1"}
    md = h.blobs.read_bytes(result_uri(h.s, job_id, "notes.md")).decode()
    assert md == render_markdown(doc)
    assert "(owner: Priya; due: tomorrow)" in md and "## Speakers" in md
    assert "- Priya: 00:05 (" in md
