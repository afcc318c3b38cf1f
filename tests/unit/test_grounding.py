"""Notes that hold to the transcript: grounding removes owners, dates and people nothing said
supports (common/notes/grounding.py), the engine applies it to model answers and records it,
and the map prompt shows a worked example built from the models."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from common.config.settings import ModelPrice
from common.domain.jobs import NotesTemplate
from common.domain.notes import (
    ActionItem,
    Dropped,
    Notes,
    NotesBatch,
    NotesBatchItem,
    NotesDocument,
    Provenance,
    Raised,
    Usage,
    render_markdown,
)
from common.domain.transcripts import Transcript
from common.notes.breaker import BreakerConfig, CircuitBreaker, MemoryBreakerStore
from common.notes.chain import NotesEngine, ProviderLink
from common.notes.chunking import estimate_tokens
from common.notes.errors import ServerError
from common.notes.extractive import extract_notes
from common.notes.grounding import (
    LABEL_NOT_PERSON,
    NOT_A_NAME,
    NOT_IN_TURNS,
    NOT_SAID,
    ground,
)
from common.notes.keys import KeyRing
from common.notes.ledger import MemorySpendLedger
from common.notes.prompts import batch_messages, map_messages, reduce_messages, worked_example
from common.notes.providers import ChatProvider, Completion, RequestStyle
from common.notes.retry_rule import RetryPolicy
from common.notes.turns import join_pieces
from tests.conftest import DATA

TURNS = [
    "SPEAKER_1: Can we get the budget out? Anna's numbers are late.",
    "SPEAKER_2: I'll send the budget by Friday. Sam Okafor will book the room.",
]
PLAIN = "I'll send the budget by Friday. Sam will book the room for the review."


def _notes(*items: ActionItem, **fields: Any) -> Notes:
    base: dict[str, Any] = {
        "action_items": list(items),
        "title": "Budget",
        "summary": "The budget goes out on Friday.",
        "key_points": [],
        "decisions": [],
        "open_questions": [],
        "topics": ["budget"],
        "people": [],
        "diary_entry": "",
    }
    return Notes.model_validate({**base, **fields})


def _item(
    owner: str | None = None, due: str | None = None, raised_by: str | None = None
) -> ActionItem:
    return ActionItem(task="Send the budget", owner=owner, due=due, raised_by=raised_by)


def _one(owner: str | None = None, due: str | None = None, raised_by: str | None = None) -> Any:
    """Ground one action item against TURNS: (owner, due, raised_by) kept, and the drops."""
    notes, dropped = ground(_notes(_item(owner, due, raised_by)), TURNS)
    item = notes.action_items[0]
    return (item.owner, item.due, item.raised_by), [(d.field, d.value, d.reason) for d in dropped]


# owners and raised_by ----------------------------------------------------------------------------


def test_an_invented_owner_is_set_to_null() -> None:
    assert _one(owner="Priya") == (
        (None, None, None),
        [("action_items[0].owner", "Priya", NOT_SAID)],
    )


def test_a_speaker_label_of_the_turns_is_kept_and_a_misspelt_one_is_the_label() -> None:
    assert _one(owner="SPEAKER_2", raised_by="SPEAKER_1") == (
        ("SPEAKER_2", None, "SPEAKER_1"),
        [],
    )
    assert _one(owner="Speaker 2") == (("SPEAKER_2", None, None), [])


def test_a_label_no_turn_has_is_dropped_even_in_name_form() -> None:
    assert _one(owner="SPEAKER_3") == (
        (None, None, None),
        [("action_items[0].owner", "SPEAKER_3", NOT_IN_TURNS)],
    )
    # Labels are not words of the recording: "speaker 3" is judged as a label only.
    notes, dropped = ground(_notes(_item(raised_by="speaker_3")), ["SPEAKER_1: Ask speaker 3."])
    assert notes.action_items[0].raised_by is None
    assert [d.reason for d in dropped] == [NOT_IN_TURNS]


def test_a_label_in_a_transcript_without_turns_is_dropped() -> None:
    notes, dropped = ground(_notes(_item(owner="SPEAKER_1")), PLAIN)
    assert notes.action_items[0].owner is None
    assert [(d.value, d.reason) for d in dropped] == [("SPEAKER_1", NOT_IN_TURNS)]


def test_a_named_owner_is_kept_when_said_whole_word_and_any_case() -> None:
    assert _one(owner="Sam Okafor")[1] == []
    assert _one(owner="sam")[1] == []
    assert _one(owner="Sam Patel")[1] == []  # the first name is said
    assert _one(owner="Anna")[1] == []  # "Anna's numbers"
    assert _one(owner="Ann")[1] == [("action_items[0].owner", "Ann", NOT_SAID)]
    assert _one(owner="Priya Okafor")[1] == [
        ("action_items[0].owner", "Priya Okafor", NOT_SAID)  # the surname alone is not enough
    ]


def test_pronouns_and_placeholders_are_not_owners() -> None:
    for value in ("I", "we", "Unknown", "N/A", "null"):
        assert _one(owner=value) == (
            (None, None, None),
            [("action_items[0].owner", value, NOT_A_NAME)],
        )
    # "the" is no first name: only the whole of "the team", if said, would keep it.
    assert _one(owner="the team")[1] == [("action_items[0].owner", "the team", NOT_SAID)]


def test_the_extractive_first_person_owner_holds_only_without_turns() -> None:
    notes, dropped = ground(_notes(_item(owner="speaker")), PLAIN)
    assert notes.action_items[0].owner == "speaker" and dropped == []
    assert _one(owner="speaker")[1] == [("action_items[0].owner", "speaker", NOT_A_NAME)]


def test_raised_by_of_decisions_and_questions_is_grounded_too() -> None:
    notes, dropped = ground(
        _notes(
            decisions=[Raised(text="Ship on Friday.", raised_by="SPEAKER_1")],
            open_questions=[Raised(text="Who books it?", raised_by="Marta")],
        ),
        TURNS,
    )
    assert notes.decisions[0].raised_by == "SPEAKER_1"
    assert notes.open_questions == [Raised(text="Who books it?", raised_by=None)]
    assert dropped == [Dropped(field="open_questions[0].raised_by", value="Marta", reason=NOT_SAID)]


# due dates --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "due", "kept"),
    [
        ("I'll send it by Friday.", "Friday", True),
        ("I'll send it by Friday.", "friday.", True),
        ("I'll send it by Friday.", "Fri", True),
        ("I'll send it by Friday.", "this Friday", True),
        ("I'll send it by Friday.", "2024-05-03", False),
        ("I'll send it by Friday.", "Monday", False),
        ("I'll send it by Friday.", "next Friday", False),
        ("Send it by May third, 2024.", "2024-05-03", True),
        ("Send it by May third.", "2024-05-03", False),  # the year was never said
        ("Send it by the twenty-first.", "21st", True),
        ("Let's finish by the end of the week.", "end of week", True),
        ("Let's finish by the end of the week.", "EOW", True),
        ("Let's finish by the end of the week.", "end of the month", False),
        ("Let's look at it next week.", "next week", True),
        ("Let's look at it this week.", "next week", False),
        ("Do it tomorrow, please.", "Tomorrow", True),
        ("We ship in the third quarter.", "Q3", True),
        ("We ship in Q3.", "Q3", True),
        ("We ship in Q3.", "Q4", False),
        ("Call at 3 p.m. on Tuesday.", "Tuesday 3pm", True),
        (
            "It is Tuesday. We talked for a long while about many other things and then at 3.",
            "Tuesday at 3",
            False,  # both said, but far apart: not one date
        ),
        ("Send it as soon as possible.", "ASAP", True),
        ("Send it soon.", "TBD", False),
    ],
)
def test_a_due_date_is_kept_only_when_its_words_are_said(said: str, due: str, kept: bool) -> None:
    notes, dropped = ground(_notes(_item(due=due)), said)
    assert (notes.action_items[0].due == due) is kept
    assert dropped == (
        [] if kept else [Dropped(field="action_items[0].due", value=due, reason=NOT_SAID)]
    )


# people and what stays -------------------------------------------------------------------------


def test_people_never_said_and_labels_are_removed() -> None:
    notes, dropped = ground(_notes(people=["Anna", "Sam Okafor", "Priya", "SPEAKER_2"]), TURNS)
    assert notes.people == ["Anna", "Sam Okafor"]
    assert [(d.field, d.value, d.reason) for d in dropped] == [
        ("people", "Priya", NOT_SAID),
        ("people", "SPEAKER_2", LABEL_NOT_PERSON),
    ]


def test_tasks_decisions_and_prose_are_paraphrases_and_stay() -> None:
    notes = _notes(
        ActionItem(task="Circulate the Q4 forecast to Priya", owner=None, due=None, raised_by=None),
        decisions=[Raised(text="Move to Kubernetes.", raised_by=None)],
        summary="Priya and Marta talked about Kubernetes.",
        key_points=["Priya leads."],
    )
    grounded, dropped = ground(notes, PLAIN)
    assert grounded == notes and dropped == []


def test_a_plain_transcript_given_as_pieces_or_text() -> None:
    pieces = ["I'll send the budget", "by Friday. Sam will", "book the room."]
    notes = _notes(_item(owner="Sam", due="Friday"), people=["Sam", "Anna"])
    for transcript in (pieces, " ".join(pieces)):
        grounded, dropped = ground(notes, transcript)
        assert (grounded.action_items[0].owner, grounded.action_items[0].due) == ("Sam", "Friday")
        assert grounded.people == ["Sam"] and [d.value for d in dropped] == ["Anna"]


def test_extractive_notes_need_no_grounding() -> None:
    """The engine grounds only model answers: the extractive engine takes owners, dates and
    people from the transcript's own words (and "speaker" for "I" without turns)."""
    real = Transcript.model_validate_json((DATA / "meeting_transcript.json").read_text())
    texts = [
        real.text,
        PLAIN,
        join_pieces(TURNS),
        "SPEAKER_1: Maria will send the draft by the end of the week.\n"
        "SPEAKER_2: I'll review it on the 3rd of May. David and Lee agreed to ship in Q3.",
    ]
    for text in texts:
        notes = extract_notes(text, NotesTemplate.MEETING)
        assert notes.action_items
        assert ground(notes, text) == (notes, [])


# the engine ------------------------------------------------------------------------------------


class Answering(ChatProvider):
    """Answers every request with the given notes (a model that invents)."""

    def __init__(self, notes: Notes, fail: bool = False) -> None:
        super().__init__(
            "fallback",
            model="qwen2.5-coder-1.5b",
            base_url=None,
            style=RequestStyle.JSON_SCHEMA,
            timeout_s=1,
            max_output_tokens=1000,
        )
        self.notes = notes
        self.fail = fail

    def complete(self, messages: list[dict[str, Any]], schema: type[Any], key: str) -> Any:
        if self.fail:
            raise ServerError("500", status=500)
        if schema is NotesBatch:
            ids = [i["id"] for i in json.loads(messages[-1]["content"].split("\n", 1)[1])]
            parsed: Any = NotesBatch(items=[NotesBatchItem(id=i, notes=self.notes) for i in ids])
        else:
            parsed = self.notes
        return Completion(parsed=parsed, usage=Usage(prompt_tokens=10), model=self.model)


def _engine(provider: ChatProvider) -> NotesEngine:
    link = ProviderLink(
        provider=provider,
        keys=KeyRing(["k"]),
        breaker=CircuitBreaker("fallback", MemoryBreakerStore(), BreakerConfig(1, 60)),
        prices={"qwen": ModelPrice(input_per_mtok=0.0, output_per_mtok=0.0)},
    )
    return NotesEngine([link], MemorySpendLedger(), policy=RetryPolicy(max_attempts=1))


INVENTED = _notes(
    ActionItem(task="Send the budget", owner="SPEAKER_2", due="2024-05-03", raised_by="SPEAKER_1"),
    ActionItem(task="Book the room", owner="Sam Okafor", due="Friday", raised_by="SPEAKER_4"),
    people=["Sam Okafor", "Jordan"],
)


def test_the_engine_grounds_a_model_answer_and_records_what_went() -> None:
    notes, prov = _engine(Answering(INVENTED)).generate("j", TURNS, NotesTemplate.MEETING)
    assert prov.provider == "fallback"
    assert [(a.owner, a.due, a.raised_by) for a in notes.action_items] == [
        ("SPEAKER_2", None, "SPEAKER_1"),
        ("Sam Okafor", "Friday", None),
    ]
    assert notes.people == ["Sam Okafor"]
    assert [(d.field, d.value) for d in prov.dropped] == [
        ("action_items[0].due", "2024-05-03"),
        ("action_items[1].raised_by", "SPEAKER_4"),
        ("people", "Jordan"),
    ]


def test_a_batch_grounds_each_item_against_its_own_transcript() -> None:
    eng = _engine(Answering(_notes(_item(owner="Sam", due="Friday"), people=["Sam"])))
    items = [("a", PLAIN), ("b", "Marta will call the bank on Monday.")]
    assert eng.plan_batches(items) == [[0, 1]]
    out = eng.generate_batch(items, NotesTemplate.MEETING)
    (a_notes, a_prov), (b_notes, b_prov) = out["a"], out["b"]
    assert (a_notes.action_items[0].owner, a_notes.action_items[0].due, a_prov.dropped) == (
        "Sam",
        "Friday",
        [],
    )
    assert (b_notes.action_items[0].owner, b_notes.action_items[0].due, b_notes.people) == (
        None,
        None,
        [],
    )
    assert [d.field for d in b_prov.dropped] == [
        "action_items[0].owner",
        "action_items[0].due",
        "people",
    ]


def test_extractive_fallback_notes_are_not_grounded_and_drop_nothing() -> None:
    notes, prov = _engine(Answering(INVENTED, fail=True)).generate(
        "j", [PLAIN], NotesTemplate.MEETING
    )
    assert prov.provider == "extractive" and prov.dropped == []
    assert notes == extract_notes(PLAIN)


# the stored document ---------------------------------------------------------------------------


def test_provenance_written_before_grounding_loads_and_notes_md_counts_drops() -> None:
    older = Provenance.model_validate_json('{"provider": "openai", "model": "m"}')
    assert older.dropped == []
    doc = NotesDocument(
        job_id="j",
        template=NotesTemplate.MEETING,
        created_at=datetime(2026, 1, 2, tzinfo=UTC),
        notes=_notes(),
        provenance=older,
    )
    assert "left out" not in render_markdown(doc)
    doc.provenance.dropped = [Dropped(field="people", value="Jordan", reason=NOT_SAID)]
    assert "cost $0.000000. 1 value(s) corrected or left out.</sub>" in render_markdown(doc)
    assert NotesDocument.model_validate_json(doc.model_dump_json()) == doc


# the prompt ------------------------------------------------------------------------------------


def test_the_schema_asks_for_action_items_first() -> None:
    assert next(iter(Notes.model_json_schema()["properties"])) == "action_items"
    assert next(iter(Notes.model_fields)) == "action_items"


@pytest.mark.parametrize("turns", [True, False])
def test_the_worked_example_is_valid_grounded_and_short(turns: bool) -> None:
    transcript, notes = worked_example(turns)
    assert Notes.model_validate_json(notes.model_dump_json()) == notes
    assert ground(notes, transcript) == (notes, [])  # it holds to its own transcript
    owners = [(a.owner, a.due) for a in notes.action_items]
    if turns:
        assert owners == [("SPEAKER_2", "Friday"), ("Tariq", None)]  # "I'll": the label
        assert transcript.startswith("SPEAKER_1: ")
        assert [d.raised_by for d in notes.decisions] == ["SPEAKER_1"]
    else:
        assert owners == [(None, "Friday"), ("Tariq", None)]
        assert "SPEAKER" not in transcript + notes.model_dump_json()
    # Small models copy the example's shape: it shows every list filled, none left empty.
    assert all(getattr(notes, f) for f in ("decisions", "open_questions", "key_points"))
    text = "SPEAKER_1: Hello.\nSPEAKER_2: I will." if turns else "Hello. I will."
    messages = map_messages(text, NotesTemplate.MEETING)
    assert "Write the action items first." in messages[0]["content"]
    # An earlier exchange, then the transcript itself as the last user message.
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"].endswith(transcript)
    assert messages[2]["content"] == notes.model_dump_json()
    assert messages[3]["content"].endswith(text)
    # Prefill costs on CPU: the example stays small (about 230 tokens with Qwen's tokenizer).
    assert estimate_tokens(transcript + notes.model_dump_json()) < 260


def test_only_the_map_prompt_carries_the_example() -> None:
    example = worked_example(True)[1].model_dump_json()
    merge = reduce_messages([_notes()], NotesTemplate.MEETING, turns=True)
    batch = batch_messages([("a", "Hi there."), ("b", "Bye now.")], NotesTemplate.MEETING)
    for messages in (merge, batch):
        assert all(example not in m["content"] for m in messages)
