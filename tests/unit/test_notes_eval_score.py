"""bench/notes_eval: the notes-quality scorer on hand-made predictions, and the meeting files."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from bench.notes_eval.eval_set import Gold, GoldActionItem, GoldRaised, Meeting, Turn, load_meetings
from bench.notes_eval.score import (
    Counts,
    aggregate,
    keyword_found,
    match,
    normalize_due,
    owner_correct,
    score_meeting,
)
from common.domain.notes import ActionItem, Notes, Raised
from common.notes.turns import split_turn

SPEAKERS = {"SPEAKER_1": "Priya", "SPEAKER_2": "Tom"}


def _meeting(*items: GoldActionItem, decisions: int = 1, questions: int = 1) -> Meeting:
    return Meeting(
        id="t1",
        title="test",
        speakers=SPEAKERS,
        turns=[
            Turn(speaker="SPEAKER_1", text="I'll send the deck. Grace will audit the services."),
            Turn(speaker="SPEAKER_2", text="I'll fix the flaky checkout test by Friday."),
        ],
        gold=Gold(
            action_items=list(items),
            decisions=[GoldRaised(text="Ship on May 14", keywords=["ship|launch", "may"])][
                :decisions
            ],
            open_questions=[GoldRaised(text="Is the budget cut?", keywords=["budget", "cut"])][
                :questions
            ],
        ),
    )


DECK = GoldActionItem(task="Send the deck", owner="SPEAKER_1", due=None, keywords=["send", "deck"])
TEST = GoldActionItem(
    task="Fix the flaky checkout test",
    owner="SPEAKER_2",
    due="by Friday",
    keywords=["flaky", "checkout", "test"],
)
AUDIT = GoldActionItem(
    task="Audit the services", owner="Grace", due=None, keywords=["audit", "services"]
)
NOBODY = GoldActionItem(
    task="Update the runbook", owner=None, due=None, keywords=["runbook", "update"]
)


def _notes(
    items: list[ActionItem],
    decisions: Sequence[str] = (),
    questions: Sequence[str] = (),
) -> Notes:
    return Notes(
        title="t",
        summary="s",
        key_points=[],
        action_items=items,
        decisions=[Raised(text=d, raised_by=None) for d in decisions],
        open_questions=[Raised(text=q, raised_by=None) for q in questions],
        topics=[],
        people=[],
        diary_entry="",
    )


def _item(task: str, owner: str | None = None, due: str | None = None) -> ActionItem:
    return ActionItem(task=task, owner=owner, due=due, raised_by=None)


PERFECT = [
    _item("Send the deck", "SPEAKER_1"),
    _item("Fix the flaky checkout test", "SPEAKER_2", "Friday"),
    _item("Audit the other services", "Grace"),
    _item("Update the runbook"),
]


def test_a_perfect_prediction_scores_one_everywhere() -> None:
    meeting = _meeting(DECK, TEST, AUDIT, NOBODY)
    score = score_meeting(
        meeting, _notes(PERFECT, ["We launch in May"], ["Will the budget be cut?"])
    )
    assert score.counts.ratios() == {
        "owner_recall": 1.0,
        "owner_precision": 1.0,
        "action_recall": 1.0,
        "action_precision": 1.0,
        "due_accuracy": 1.0,
        "decisions_recall": 1.0,
        "decisions_precision": 1.0,
        "questions_recall": 1.0,
        "questions_precision": 1.0,
    }
    assert score.missed == [] and score.extra == []
    # Three owned gold items; the unowned one is in neither owner denominator.
    assert score.counts.gold_owned == 3 and score.counts.predicted_owned_matched == 3


def test_a_wrong_owner_lowers_owner_precision_and_recall_but_not_the_match() -> None:
    items = [_item("Send the deck", "SPEAKER_2"), *PERFECT[1:]]
    c = score_meeting(_meeting(DECK, TEST, AUDIT, NOBODY), _notes(items)).counts
    assert c.action_recall == 1.0 and c.action_precision == 1.0
    assert c.owner_precision == pytest.approx(2 / 3)
    assert c.owner_recall == pytest.approx(2 / 3)


def test_an_owner_invented_for_an_unowned_item_lowers_precision_only() -> None:
    items = [*PERFECT[:3], _item("Update the runbook", "SPEAKER_1")]
    c = score_meeting(_meeting(DECK, TEST, AUDIT, NOBODY), _notes(items)).counts
    assert c.owner_recall == 1.0
    assert c.owner_precision == pytest.approx(3 / 4)


def test_a_missing_owner_lowers_recall_only() -> None:
    items = [_item("Send the deck"), *PERFECT[1:]]
    c = score_meeting(_meeting(DECK, TEST, AUDIT, NOBODY), _notes(items)).counts
    assert c.owner_recall == pytest.approx(2 / 3)
    assert c.owner_precision == 1.0


def test_an_unmatched_gold_item_lowers_recall_and_an_extra_prediction_precision() -> None:
    meeting = _meeting(DECK, TEST, AUDIT, NOBODY)
    c = score_meeting(meeting, _notes(PERFECT[:2])).counts
    assert c.action_recall == 0.5 and c.action_precision == 1.0
    assert c.owner_recall == pytest.approx(2 / 3)  # Grace's item was never found
    score = score_meeting(meeting, _notes([*PERFECT, _item("Order pizza for the team")]))
    assert score.counts.action_recall == 1.0 and score.counts.action_precision == 0.8
    assert score.extra == ["Order pizza for the team"]


def test_the_name_of_a_labelled_speaker_counts_as_the_label() -> None:
    assert owner_correct("Tom", "SPEAKER_2", SPEAKERS)
    assert owner_correct("SPEAKER_2", "SPEAKER_2", SPEAKERS)
    assert owner_correct("speaker_2", "SPEAKER_2", SPEAKERS)
    assert not owner_correct("Priya", "SPEAKER_2", SPEAKERS)
    assert not owner_correct("SPEAKER_1", "SPEAKER_2", SPEAKERS)
    # A non-speaker is known by the name as said, possibly followed by more words.
    assert owner_correct("Grace", "Grace", SPEAKERS)
    assert owner_correct("Grace on the platform team", "Grace", SPEAKERS)
    assert not owner_correct("the platform team", "Grace", SPEAKERS)
    assert not owner_correct(None, "Grace", SPEAKERS)
    assert not owner_correct("Grace", None, SPEAKERS)


def test_due_dates_null_against_null_counts_and_strings_are_normalised() -> None:
    meeting = _meeting(DECK, TEST)
    c = score_meeting(
        meeting,
        _notes([_item("Send the deck"), _item("Fix flaky checkout test", due="by Friday.")]),
    ).counts
    assert c.due_accuracy == 1.0 and c.due_correct == 2
    c = score_meeting(
        meeting, _notes([_item("Send the deck", due="Monday"), _item("Fix flaky checkout test")])
    ).counts
    assert c.due_accuracy == 0.0
    assert normalize_due("by Thursday at the latest") == "thursday"
    assert normalize_due("By the end of this week") == normalize_due("end of the week")
    assert normalize_due("before the release") == "release"
    assert normalize_due("Not stated") is None and normalize_due(None) is None
    assert normalize_due("next Friday") != normalize_due("Friday")


def test_keywords_match_word_prefixes_alternatives_and_short_words_exactly() -> None:
    assert keyword_found("expir", "certificates expiring within 30 days")
    assert keyword_found("post mortem|postmortem", "Write the post-mortem")
    assert keyword_found("q3", "moves to Q3") and not keyword_found("q3", "the q3x plan")
    assert not keyword_found("dark mode", "the dark theme")
    assert keyword_found("don't", "we don't go ahead")


def test_matching_is_greedy_one_to_one_and_respects_the_threshold() -> None:
    gold = [["alert", "expir", "thirty"], ["audit", "services", "manual"]]
    predicted = [
        "Audit the services",
        "Alert on expiring certs",
        "Alert when expiring in thirty days",
    ]
    # The better alert prediction takes the alert; the other alert matches nothing.
    assert match(gold, predicted) == [(0, 2, 1.0), (1, 0, pytest.approx(2 / 3))]
    assert match([["alert", "expir", "thirty"]], ["Set an alert"]) == []  # 1/3 < 0.5


def test_a_meeting_with_no_gold_items_leaves_recall_unmeasured() -> None:
    meeting = _meeting(decisions=0, questions=0)
    c = score_meeting(meeting, _notes([])).counts
    assert c.action_recall is None and c.owner_recall is None and c.decisions_recall is None
    c = score_meeting(meeting, _notes([_item("Send the deck", "SPEAKER_1")])).counts
    assert c.action_precision == 0.0 and c.owner_precision is None


def test_decisions_and_questions_are_recalled_by_keywords() -> None:
    meeting = _meeting(DECK)
    c = score_meeting(meeting, _notes([], ["Launch moved to May"], ["Who owns the SDK?"])).counts
    assert c.decisions_recall == 1.0
    assert c.questions_recall == 0.0 and c.questions_precision == 0.0


def test_aggregation_sums_counts_before_the_ratios() -> None:
    big = score_meeting(_meeting(DECK, TEST, AUDIT, NOBODY), _notes(PERFECT))
    small = score_meeting(_meeting(DECK), _notes([]))
    total = aggregate([big, small])
    assert total.action_recall == pytest.approx(4 / 5)  # micro; macro would be 0.5
    assert total == big.counts + small.counts
    assert aggregate([]) == Counts() and Counts().action_recall is None


def test_every_meeting_file_loads_and_its_gold_is_consistent() -> None:
    meetings = load_meetings()
    assert len(meetings) >= 7
    assert len({m.id for m in meetings}) == len(meetings)
    for meeting in meetings:
        assert meeting.problems() == [], meeting.id
        for piece in meeting.pieces():
            label, _ = split_turn(piece)
            assert label in meeting.speakers, (meeting.id, piece[:40])
        for item in meeting.gold.action_items:
            owner = item.owner
            assert owner is None or owner in meeting.speakers or owner in _said(meeting), owner
    assert sum(len(m.gold.action_items) for m in meetings) >= 30
    assert any(not m.gold.action_items for m in meetings)
    words = sorted(m.words for m in meetings)
    assert words[0] < 200 and words[-1] > 1_200


def test_the_checker_finds_an_unknown_owner_and_an_undeclared_speaker() -> None:
    bad = _meeting(
        GoldActionItem(task="x", owner="SPEAKER_3", due=None, keywords=["x"]),
        GoldActionItem(task="y", owner="Tom", due=None, keywords=["y"]),
        GoldActionItem(task="z", owner="Zed", due=None, keywords=["z"]),
    )
    bad.turns.append(Turn(speaker="SPEAKER_4", text="Hello."))
    found = bad.problems()
    assert any("SPEAKER_3" in p and "not a declared speaker" in p for p in found)
    assert any("'Tom'" in p and "use the label" in p for p in found)
    assert any("'Zed'" in p and "never said" in p for p in found)
    assert any("SPEAKER_4" in p and "does not declare" in p for p in found)


def test_only_selects_meetings_and_refuses_an_unknown_id() -> None:
    assert [m.id for m in load_meetings(only=["m01"])] == ["m01"]
    with pytest.raises(ValueError, match="m99"):
        load_meetings(only=["m99"])


def _said(meeting: Meeting) -> str:
    return " ".join(t.text for t in meeting.turns)
