"""Notes that see the turns (issue 12): the schema and its older form, turn lines, prompts,
chunks, the extractive engine, notes.md with names and talk time, the cache key, and the
notes handler writing speakers and the job's names."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, cast

from common.domain.jobs import Job, JobState, NotesTemplate
from common.domain.messages import TranscriptReady
from common.domain.notes import (
    ActionItem,
    Notes,
    NotesDocument,
    Provenance,
    Raised,
    render_markdown,
)
from common.domain.speakers import SpeakerTalk, Turn
from common.domain.transcripts import Segment, Transcript, result_uri
from common.notes import cache as notes_cache
from common.notes.chunking import chunk_texts, estimate_tokens
from common.notes.extractive import extract_notes, merge_notes
from common.notes.prompts import batch_messages, map_messages, parse_request, reduce_messages
from common.notes.turns import has_turns, join_pieces, notes_pieces, split_pieces, split_turn
from functions.bootstrap import Services
from functions.notes import NotesOutcome, NotesServices, handle_transcript_ready
from tests.fakes import MemoryBlobStore, MemoryJobStore, new_job, settings

LINES: list[tuple[str | None, str]] = [
    ("SPEAKER_1", "We decided to ship the beta on Friday. Should we move the demo?"),
    ("SPEAKER_2", "I'll send the release notes by Thursday. Sam will book the room tomorrow."),
    ("SPEAKER_1", "Let's review the budget next week."),
]


def _transcript(
    lines: list[tuple[str | None, str]] | None = None, job_id: str = "j-1", **extra: Any
) -> Transcript:
    """One segment per line, 10 s each, with a turn per labelled segment."""
    segments = [
        Segment(start=10 * i, end=10 * i + 10, text=" " + text, speaker=speaker)
        for i, (speaker, text) in enumerate(LINES if lines is None else lines)
    ]
    turns = [
        Turn(start=s.start, end=s.end, speaker=s.speaker) for s in segments if s.speaker is not None
    ]
    return Transcript(
        job_id=job_id,
        language="en",
        duration_s=10 * len(segments),
        model="tiny.en",
        segments=segments,
        turns=turns,
        **extra,
    )


def _notes(**fields: Any) -> Notes:
    base: dict[str, Any] = {
        "title": "Standup",
        "summary": "Short.",
        "key_points": [],
        "action_items": [],
        "decisions": [],
        "open_questions": [],
        "topics": [],
        "people": [],
        "diary_entry": "",
    }
    return Notes.model_validate({**base, **fields})


# the schema ------------------------------------------------------------------------------------


def test_the_schema_stays_strict_every_field_required_and_nothing_extra() -> None:
    defs = Notes.model_json_schema()["$defs"]
    for name, fields in (
        ("ActionItem", {"task", "owner", "due", "raised_by"}),
        ("Raised", {"text", "raised_by"}),
    ):
        assert set(defs[name]["required"]) == fields == set(defs[name]["properties"])
        assert defs[name]["additionalProperties"] is False
    top = Notes.model_json_schema()
    assert top["properties"]["decisions"]["items"] == {"$ref": "#/$defs/Raised"}
    assert top["properties"]["open_questions"]["items"] == {"$ref": "#/$defs/Raised"}


def test_notes_json_written_before_speakers_still_loads() -> None:
    older = {
        "job_id": "old",
        "template": "meeting",
        "created_at": "2026-01-02T03:04:00Z",
        "notes": {
            "title": "t",
            "summary": "s",
            "key_points": [],
            "action_items": [{"task": "Send it", "owner": "Anna", "due": "Friday"}],
            "decisions": ["We ship on Friday."],
            "open_questions": ["Is the office open?"],
            "topics": [],
            "people": [],
            "diary_entry": "",
        },
        "provenance": {"provider": "openai", "model": "m"},
    }
    doc = NotesDocument.model_validate_json(json.dumps(older))
    assert doc.notes.decisions == [Raised(text="We ship on Friday.", raised_by=None)]
    assert doc.notes.open_questions[0].text == "Is the office open?"
    assert doc.notes.action_items == [
        ActionItem(task="Send it", owner="Anna", due="Friday", raised_by=None)
    ]
    assert (doc.speakers, doc.speaker_names) == ([], {})
    assert "- We ship on Friday.\n" in render_markdown(doc)
    # And what is written now round-trips as objects.
    again = NotesDocument.model_validate_json(doc.model_dump_json())
    assert again == doc


# turn lines ------------------------------------------------------------------------------------


def test_a_transcript_with_speakers_is_read_as_turn_lines_by_label() -> None:
    transcript = _transcript(
        [
            ("SPEAKER_1", "Hello there."),
            ("SPEAKER_1", "  Two  segments, one turn."),
            (None, "Said in a pause."),
            ("SPEAKER_2", "Hi."),
        ],
        speaker_names={"SPEAKER_1": "Priya"},
    )
    pieces = notes_pieces(transcript)
    assert pieces == [
        "SPEAKER_1: Hello there. Two segments, one turn. Said in a pause.",
        "SPEAKER_2: Hi.",
    ]  # labels, never the names
    text = join_pieces(pieces)
    assert has_turns(text) and split_pieces(text) == pieces
    assert split_turn(pieces[1]) == ("SPEAKER_2", "Hi.")


def test_a_transcript_without_speakers_is_read_as_before() -> None:
    transcript = _transcript([(None, "Hello there."), (None, "Bye.")])
    assert notes_pieces(transcript) == transcript.pieces
    text = join_pieces(transcript.pieces)
    assert text == " Hello there.  Bye." and not has_turns(text)
    assert split_pieces(text) == [text]


# prompts ---------------------------------------------------------------------------------------


def test_prompts_with_turns_give_the_lines_and_the_label_rules() -> None:
    text = join_pieces(notes_pieces(_transcript()))
    messages = map_messages(text, NotesTemplate.MEETING)
    system, user = messages[0]["content"], messages[-1]["content"]
    assert user.startswith("TRANSCRIPT:\nSPEAKER_1: We decided")
    assert "one a line: 'SPEAKER_1: what they said'" in system
    assert "owned by SPEAKER_2" in system and "(owner 'Sam')" in system
    task, template, payload = parse_request(messages)
    assert payload.splitlines()[1].startswith("SPEAKER_2: I'll send the release notes")
    assert (task.value, template) == ("notes", NotesTemplate.MEETING)


def test_prompts_without_turns_are_as_before() -> None:
    plain = map_messages("Anna will send the budget by Friday.", NotesTemplate.MEETING)
    assert "SPEAKER" not in plain[0]["content"] and "turn" not in plain[0]["content"]
    merge = reduce_messages([_notes()], NotesTemplate.MEETING)
    assert "SPEAKER" not in merge[0]["content"]
    batch = batch_messages([("a", "Hello there.")], NotesTemplate.MEETING)
    assert "SPEAKER" not in batch[0]["content"]


def test_merge_and_batch_prompts_keep_labels_when_there_are_turns() -> None:
    merge = reduce_messages([_notes()], NotesTemplate.MEETING, turns=True)
    assert "keep them exactly as they are" in merge[0]["content"]
    text = join_pieces(notes_pieces(_transcript()))
    batch = batch_messages([("a", "Hello there."), ("b", text)], NotesTemplate.MEETING)
    assert "'SPEAKER_1: what they said'" in batch[0]["content"]
    items = json.loads(parse_request(batch)[2])
    assert items[1]["text"].count("\n") == 2  # each turn stays on its line


def test_long_transcripts_are_chunked_by_turns_and_keep_their_labels() -> None:
    lines: list[tuple[str | None, str]] = [
        (f"SPEAKER_{i % 3 + 1}", f"Item {i} is on the list. It matters for unit {i}.")
        for i in range(40)
    ]
    lines.append(("SPEAKER_2", " ".join(f"Long sentence number {i}." for i in range(200))))
    pieces = notes_pieces(_transcript(lines))
    chunks = chunk_texts(pieces, 200)
    assert len(chunks) > 3
    for chunk in chunks:
        assert has_turns(chunk), chunk[:80]
        assert estimate_tokens(chunk) <= 200 + chunk.count("\n")
    # Nothing lost: every word of every turn is in some chunk, under its own label.
    said = [split_turn(line) for c in chunks for line in c.splitlines()]
    assert " ".join(t for s, t in said if s == "SPEAKER_2").endswith("Long sentence number 199.")
    assert sum(len(t.split()) for _, t in said) == sum(len(t.split()) for _, t in lines)


# the extractive engine -------------------------------------------------------------------------


def test_extractive_owners_and_raised_by_come_from_the_turns() -> None:
    notes = extract_notes(join_pieces(notes_pieces(_transcript())), NotesTemplate.MEETING)
    items = {a.task: (a.owner, a.due, a.raised_by) for a in notes.action_items}
    assert items == {
        "Send the release notes by Thursday": ("SPEAKER_2", "Thursday", "SPEAKER_2"),
        "Book the room tomorrow": ("Sam", "tomorrow", "SPEAKER_2"),  # named, not the speaker
        "Review the budget next week": (None, "next week", "SPEAKER_1"),
    }
    assert notes.decisions == [
        Raised(text="We decided to ship the beta on Friday.", raised_by="SPEAKER_1")
    ]
    assert notes.open_questions == [Raised(text="Should we move the demo?", raised_by="SPEAKER_1")]
    # The labels say who spoke; they are not words of the recording.
    assert "SPEAKER" not in notes.summary + " ".join(notes.key_points + notes.topics)
    assert "SPEAKER_1" not in notes.people


def test_extractive_without_turns_owns_first_person_as_the_speaker() -> None:
    notes = extract_notes("I'll send the release notes by Thursday. We decided to ship it.")
    assert [(a.owner, a.raised_by) for a in notes.action_items] == [("speaker", None)]
    assert notes.decisions[0].raised_by is None


def test_a_reply_that_opens_with_assent_is_still_a_commitment() -> None:
    """The demo's "Great, I will send the test plan to the team by Friday." was lost."""
    notes = extract_notes("SPEAKER_2: Great, I will send the test plan to the team by Friday.")
    assert [(a.task, a.owner, a.due) for a in notes.action_items] == [
        ("Send the test plan to the team by Friday", "SPEAKER_2", "Friday")
    ]


def test_merge_keeps_who_raised_what_first() -> None:
    first = _notes(decisions=[{"text": "Ship it.", "raised_by": "SPEAKER_1"}])
    second = _notes(
        decisions=[
            {"text": "ship  it.", "raised_by": "SPEAKER_2"},
            {"text": "Hire two.", "raised_by": None},
        ]
    )
    merged = merge_notes([first, second])
    assert [(d.text, d.raised_by) for d in merged.decisions] == [
        ("Ship it.", "SPEAKER_1"),
        ("Hire two.", None),
    ]


# notes.md --------------------------------------------------------------------------------------


def _doc(names: dict[str, str], speakers: list[SpeakerTalk] | None = None) -> NotesDocument:
    notes = _notes(
        action_items=[
            {
                "task": "Send the notes",
                "owner": "SPEAKER_2",
                "due": "Friday",
                "raised_by": "SPEAKER_2",
            },
            {"task": "Book a room", "owner": "Sam", "due": None, "raised_by": "SPEAKER_1"},
        ],
        decisions=[{"text": "Ship on Friday.", "raised_by": "SPEAKER_1"}],
        open_questions=[{"text": "Who pays?", "raised_by": None}],
    )
    return NotesDocument(
        job_id="j1",
        template=NotesTemplate.MEETING,
        created_at=datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
        notes=notes,
        provenance=Provenance(provider="openai", model="m"),
        speakers=speakers if speakers is not None else [],
        speaker_names=names,
    )


def test_markdown_shows_names_for_labels_and_labels_without_names() -> None:
    talk = [
        SpeakerTalk(speaker="SPEAKER_1", talk_s=125.4, share=0.6271, turns=3),
        SpeakerTalk(speaker="SPEAKER_2", talk_s=74.6, share=0.3729, turns=2),
    ]
    md = render_markdown(_doc({"SPEAKER_1": "Priya"}, talk))
    assert "- [ ] Send the notes (owner: SPEAKER_2; due: Friday)\n" in md
    assert "- [ ] Book a room (owner: Sam; raised by: Priya)\n" in md
    assert "- Ship on Friday. (raised by: Priya)\n" in md
    assert "- Who pays?\n" in md
    assert "## Speakers\n\n- Priya: 02:05 (63%)\n- SPEAKER_2: 01:15 (37%)\n" in md
    assert render_markdown(_doc({"SPEAKER_1": "Priya"}, talk)) == md  # pure

    # A rename: the same notes.json under other names, rendered again (no model call).
    doc = _doc({"SPEAKER_1": "Priya"}, talk).with_names({"SPEAKER_1": "Priya", "SPEAKER_2": "Omar"})
    assert [t.name for t in doc.speakers] == ["Priya", "Omar"]
    renamed = render_markdown(doc)
    assert "- [ ] Send the notes (owner: Omar; due: Friday)\n" in renamed
    assert "- Omar: 01:15 (37%)" in renamed
    assert render_markdown(doc.with_names({})).count("SPEAKER_2") == 2  # names removed


def test_markdown_has_no_speakers_section_without_speakers() -> None:
    md = render_markdown(_doc({}))
    assert "## Speakers" not in md and "(raised by: SPEAKER_1)" in md


# the cache key ---------------------------------------------------------------------------------


def test_the_cache_key_follows_who_spoke_but_not_what_they_are_called() -> None:
    s, options = settings(), new_job().options
    base = _transcript()
    key = notes_cache.cache_key(base, options, s)
    swapped = _transcript(
        [("SPEAKER_2" if who == "SPEAKER_1" else "SPEAKER_1", text) for who, text in LINES]
    )
    assert notes_cache.cache_key(swapped, options, s) != key  # same words, other speakers
    named = base.model_copy(update={"speaker_names": {"SPEAKER_1": "Priya"}})
    assert notes_cache.cache_key(named, options, s) == key  # a rename remakes nothing
    assert notes_cache.cache_key(notes_pieces(base), options, s) == key
    unlabelled = _transcript([(None, text) for _, text in LINES])
    assert notes_cache.cache_key(unlabelled, options, s) != key
    # Without speakers the key is what it was (stored entries stay good, DELETE finds them).
    assert notes_cache.cache_key(unlabelled, options, s) == notes_cache.cache_key(
        unlabelled.pieces, options, s
    )


# the handler -----------------------------------------------------------------------------------


class TurnEngine:
    """The extractive engine behind the chain's interface, recording what it was given; a
    rename may land while it 'thinks'."""

    def __init__(self, during: Any = None) -> None:
        self.calls: list[list[str]] = []
        self.during = during

    def generate(self, job_id: str, pieces: list[str], template: Any, **_: object) -> Any:
        self.calls.append(list(pieces))
        if self.during is not None:
            self.during()
        provenance = Provenance(provider="openai", model="m", calls=1, cost_usd=0.01)
        return extract_notes(join_pieces(pieces), template), provenance

    def generate_batch(self, items: list[tuple[str, str]], template: Any, **_: object) -> Any:
        return {i: self.generate(i, split_pieces(t), template) for i, t in items}


def _handler(
    *transcripts: Transcript, engine: TurnEngine, names: dict[str, str] | None = None
) -> tuple[NotesServices, MemoryJobStore, MemoryBlobStore]:
    blobs, jobs = MemoryBlobStore(), MemoryJobStore()
    for t in transcripts:
        job = new_job(t.job_id).model_copy(
            update={"state": JobState.TRANSCRIBED, "speaker_names": names or {}}
        )
        jobs.jobs[job.job_id] = job
        uri = result_uri(settings(), t.job_id, "transcript.json")
        blobs.write_bytes(uri, t.model_dump_json().encode(), content_type="application/json")
    s = settings()
    s = s.model_copy(update={"llm": s.llm.model_copy(update={"batch_max_items": 1})})
    svc = NotesServices(
        core=Services(settings=s, jobs=cast(Any, jobs), publisher=cast(Any, None), blobs=blobs),
        engine=cast(Any, engine),
        webhooks=None,
    )
    return svc, jobs, blobs


def _written(blobs: MemoryBlobStore, job_id: str) -> tuple[NotesDocument, str]:
    s = settings()
    doc = NotesDocument.model_validate_json(blobs.read_bytes(result_uri(s, job_id, "notes.json")))
    return doc, blobs.read_bytes(result_uri(s, job_id, "notes.md")).decode()


def test_the_handler_writes_talk_time_and_the_names_as_they_are_when_it_writes() -> None:
    engine = TurnEngine()
    svc, jobs, blobs = _handler(_transcript(), engine=engine, names={"SPEAKER_1": "Priya"})

    def rename() -> None:  # PUT /v1/jobs/j-1/speakers while the model is at work
        job = jobs.get("j-1")
        jobs.jobs["j-1"] = job.model_copy(
            update={"speaker_names": {**job.speaker_names, "SPEAKER_2": "Omar"}}
        )

    engine.during = rename
    assert handle_transcript_ready(TranscriptReady(job_id="j-1"), svc) is NotesOutcome.COMPLETED

    assert engine.calls == [notes_pieces(_transcript())]  # turn lines, labels only
    doc, md = _written(blobs, "j-1")
    assert doc.speaker_names == {"SPEAKER_1": "Priya", "SPEAKER_2": "Omar"}
    assert [(t.speaker, t.name, t.talk_s, t.turns) for t in doc.speakers] == [
        ("SPEAKER_1", "Priya", 20.0, 2),
        ("SPEAKER_2", "Omar", 10.0, 1),
    ]
    owners = {a.owner for a in doc.notes.action_items}
    assert "SPEAKER_2" in owners  # notes.json keeps the label ...
    assert "(owner: Omar; due: Thursday)" in md  # ... notes.md shows the name
    assert "## Speakers" in md and "- Priya: 00:20 (67%)" in md


def test_same_words_other_speakers_make_new_notes_and_a_rename_reuses_them() -> None:
    first = _transcript(job_id="a-1")
    renamed = _transcript(job_id="a-2", speaker_names={"SPEAKER_1": "Priya"})
    swapped = _transcript(
        [("SPEAKER_2" if who == "SPEAKER_1" else "SPEAKER_1", text) for who, text in LINES],
        job_id="a-3",
    )
    engine = TurnEngine()
    svc, jobs, blobs = _handler(first, renamed, swapped, engine=engine)
    jobs.jobs["a-2"] = jobs.get("a-2").model_copy(update={"speaker_names": {"SPEAKER_1": "Ann"}})

    for job_id in ("a-1", "a-2", "a-3"):
        outcome = handle_transcript_ready(TranscriptReady(job_id=job_id), svc)
        assert outcome is NotesOutcome.COMPLETED

    assert len(engine.calls) == 2  # a-2 (same turns, names differ) came from the cache
    reused, md = _written(blobs, "a-2")
    assert reused.provenance.from_cache and reused.speaker_names == {"SPEAKER_1": "Ann"}
    assert "- Ann: 00:20" in md
    swapped_doc, _ = _written(blobs, "a-3")
    assert not swapped_doc.provenance.from_cache
    assert swapped_doc.notes.decisions[0].raised_by == "SPEAKER_2"


def test_a_transcript_without_speakers_writes_no_speakers() -> None:
    engine = TurnEngine()
    plain = _transcript([(None, text) for _, text in LINES])
    svc, jobs, blobs = _handler(plain, engine=engine)
    assert handle_transcript_ready(TranscriptReady(job_id="j-1"), svc) is NotesOutcome.COMPLETED
    assert engine.calls == [plain.pieces]
    doc, md = _written(blobs, "j-1")
    assert (doc.speakers, doc.speaker_names) == ([], {}) and "## Speakers" not in md
    assert cast(Job, jobs.get("j-1")).state is JobState.COMPLETED
