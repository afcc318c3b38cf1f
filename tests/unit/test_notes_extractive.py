"""The extractive engine on a real transcript (tests/data/make_real_transcript.py made it from
espeak-ng speech and faster-whisper tiny.en), and the notes rendering."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from common.domain.jobs import NotesTemplate
from common.domain.notes import Notes, NotesDocument, Provenance, render_markdown
from common.domain.transcripts import Transcript
from common.notes.extractive import extract_notes, keyphrases, merge_notes, split_sentences
from tests.conftest import DATA


@pytest.fixture(scope="module")
def transcript() -> Transcript:
    return Transcript.model_validate_json((DATA / "meeting_transcript.json").read_text())


def test_real_transcript_gives_valid_useful_notes(transcript: Transcript) -> None:
    notes = extract_notes(transcript.text, NotesTemplate.MEETING)
    Notes.model_validate(notes.model_dump())  # round-trips through the schema
    sentences = set(split_sentences(transcript.text))
    # Summary and key points are sentences of the transcript, not invented text.
    assert notes.summary and all(s in sentences for s in split_sentences(notes.summary))
    assert notes.key_points and set(notes.key_points) <= sentences
    owners = {(a.owner, a.due) for a in notes.action_items}
    assert ("David", "Friday") in owners
    assert ("Maria", "end of the week") in owners
    assert any(a.owner == "speaker" and a.due == "tomorrow" for a in notes.action_items)
    assert any("decided to ship" in d.text for d in notes.decisions)
    assert any(q.text.startswith("Should we move") for q in notes.open_questions)
    # Without turns nobody is known to have raised anything.
    assert all(r.raised_by is None for r in [*notes.decisions, *notes.action_items])
    assert {"Maria", "David"} <= set(notes.people)
    assert any("cloud" in t for t in notes.topics)
    assert notes.title.startswith("Meeting: ")
    assert notes.diary_entry.startswith("Today I was in a meeting about")


@pytest.mark.parametrize("template", list(NotesTemplate))
def test_templates_change_the_voice_not_the_facts(
    transcript: Transcript, template: NotesTemplate
) -> None:
    base = extract_notes(transcript.text, NotesTemplate.MEETING)
    notes = extract_notes(transcript.text, template)
    assert notes.action_items == base.action_items
    assert notes.diary_entry != "" and notes.title.split(":")[0] != ""


def test_no_speech_gives_empty_notes() -> None:
    notes = extract_notes("   ", NotesTemplate.DIARY)
    assert (notes.summary.strip(), notes.key_points, notes.action_items) == ("", [], [])


def test_merge_keeps_what_every_part_found(transcript: Transcript) -> None:
    half = len(transcript.segments) // 2
    first = " ".join(s.text for s in transcript.segments[:half])
    second = " ".join(s.text for s in transcript.segments[half:])
    parts = [extract_notes(first), extract_notes(second)]
    merged = merge_notes(parts)
    tasks = {a.task for p in parts for a in p.action_items}
    assert {a.task for a in merged.action_items} == tasks
    assert {d.text for d in merged.decisions} == {d.text for p in parts for d in p.decisions}
    assert merged.summary


def test_keyphrases_prefer_repeated_phrases() -> None:
    text = (
        "The database migration is late. We discussed the database migration again. "
        "Lunch was fine. The database migration needs a new owner."
    )
    assert keyphrases(text, 3)[0] == "database migration"


def test_markdown_renders_every_section(transcript: Transcript) -> None:
    doc = NotesDocument(
        job_id="j1",
        template=NotesTemplate.LECTURE,
        created_at=datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
        notes=extract_notes(transcript.text, NotesTemplate.LECTURE),
        provenance=Provenance(provider="extractive", model="extractive-v1"),
    )
    md = render_markdown(doc)
    assert md.startswith(f"# {doc.notes.title}\n")
    for heading in ("## Summary", "## Key concepts", "## Follow-up", "## Decisions"):
        assert heading in md
    assert (
        "- [ ] Review the cloud bill and propose savings by Friday (owner: David; due: Friday)"
        in md
    )
    assert "Made by extractive (extractive-v1)" in md
    assert render_markdown(doc) == md  # pure: a redelivery rewrites the same bytes
