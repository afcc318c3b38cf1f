"""Owners read off the committing turn (common/notes/attribution.py), and items copied from
the prompt's worked example removed (grounding with ``example``)."""

from __future__ import annotations

from common.domain.jobs import NotesTemplate
from common.domain.notes import ActionItem, Notes, Raised
from common.notes.attribution import attribute, replaced_reason
from common.notes.extractive import extract_notes
from common.notes.grounding import COPIED, ground
from common.notes.prompts import worked_example

TURNS = [
    "SPEAKER_1: Owen, the licences. Rosa, can you look at the logs?",
    "SPEAKER_3: Sure. I'll cancel the unused SaaS licences, Owen, by Friday.",
    "SPEAKER_2: And Noor will book the quarterly review with finance.",
]


def _notes(*items: ActionItem) -> Notes:
    return Notes(
        action_items=list(items),
        title="t",
        summary="s",
        key_points=[],
        decisions=[],
        open_questions=[],
        topics=[],
        people=[],
        diary_entry="d",
    )


def _rule(turns: list[str]) -> list[ActionItem]:
    return extract_notes("\n".join(turns), NotesTemplate.MEETING).action_items


def test_the_speaker_who_says_ill_owns_it_not_the_name_in_the_sentence() -> None:
    model = _notes(
        ActionItem(task="Cancel unused SaaS licences", owner="Owen", due="Friday", raised_by=None)
    )
    notes, replaced, _ = attribute(model, _rule(TURNS))
    assert notes.action_items[0].owner == "SPEAKER_3"
    assert notes.action_items[0].due == "Friday"  # only the owner is the rule's
    assert [(r.field, r.value, r.reason) for r in replaced] == [
        ("action_items[0].owner", "Owen", replaced_reason("SPEAKER_3"))
    ]


def test_a_named_owner_stays_named_and_a_missing_one_is_filled() -> None:
    model = _notes(
        ActionItem(task="Book the quarterly review", owner=None, due=None, raised_by=None),
        ActionItem(task="Cancel the unused licences", owner="SPEAKER_3", due=None, raised_by=None),
    )
    notes, replaced, _ = attribute(model, _rule(TURNS))
    assert [i.owner for i in notes.action_items] == ["Noor", "SPEAKER_3"]
    assert replaced == []  # a null filled in and an owner confirmed replace nothing


def test_items_the_rule_does_not_find_keep_the_models_owner() -> None:
    model = _notes(ActionItem(task="Look at the logs", owner="Rosa", due=None, raised_by=None))
    notes, replaced, _ = attribute(model, _rule(TURNS))
    assert notes.action_items[0].owner == "Rosa" and replaced == []


def test_one_shared_word_is_not_a_match() -> None:
    model = _notes(ActionItem(task="Cancel the offsite", owner="Owen", due=None, raised_by=None))
    notes, _, _ = attribute(model, _rule(TURNS))
    assert notes.action_items[0].owner == "Owen"


def test_a_plain_transcripts_speaker_owner_is_not_imposed() -> None:
    rule = _rule(["I'll cancel the unused licences by Friday."])
    assert rule[0].owner == "speaker"
    model = _notes(ActionItem(task="Cancel unused licences", owner=None, due=None, raised_by=None))
    assert attribute(model, rule)[0].action_items[0].owner is None


def test_items_copied_from_the_worked_example_are_removed_unless_said() -> None:
    transcript, example = worked_example(True)
    copied = example.action_items[0]
    model = _notes(
        copied, ActionItem(task="Cancel unused licences", owner=None, due=None, raised_by=None)
    ).model_copy(
        update={
            "decisions": example.decisions,
            "open_questions": [Raised(text="Why?", raised_by=None)],
        }
    )
    notes, dropped = ground(model, TURNS, example=example)
    assert [i.task for i in notes.action_items] == ["Cancel unused licences"]
    assert notes.decisions == [] and [q.text for q in notes.open_questions] == ["Why?"]
    assert [(d.field, d.reason) for d in dropped if d.reason == COPIED] == [
        ("action_items", COPIED),
        ("decisions", COPIED),
    ]
    # The same words said in the recording itself: a real item, kept.
    said = ground(model, transcript.split("\n"), example=example)[0]
    assert copied.task in [i.task for i in said.action_items]


def test_a_speakers_own_commitment_the_model_left_out_is_added() -> None:
    turns = [*TURNS, "SPEAKER_1: I'll send the revised headcount plan tomorrow."]
    model = _notes(ActionItem(task="Cancel unused licences", owner=None, due=None, raised_by=None))
    notes, _, added = attribute(model, _rule(turns))
    assert [(a.owner, a.due) for a in added] == [("SPEAKER_1", "tomorrow")]
    assert "headcount" in added[0].task and notes.action_items[-1] == added[0]
    # Named owners ("Noor will ...") are not added: the label rule is the one to trust.
    assert all(a.owner != "Noor" for a in added)
    # Nothing close to an item the model has is added twice.
    assert not any("licences" in a.task for a in added)
