"""Predicted ``Notes`` against a meeting's gold: pure functions, no I/O.

Matching (action items by their task, decisions and open questions by their text):

- a gold entry has ``keywords``; a keyword is one or more ``|``-separated alternatives, an
  alternative one or more words. An alternative is *found* in a text when every one of its
  words is found among the text's words: a word of three characters or more as a prefix of a
  text word ("renew" finds "renewal", "expir" finds "expiring"), a shorter one exactly.
  Words are lowercase runs of letters and digits (an apostrophe inside a word kept);
- a prediction's *score* against a gold entry is the share of the gold's keywords found in
  it; a pair can match when the score is at least ``THRESHOLD`` (0.5: two of three or four
  keywords, one of two);
- the matching is greedy and one-to-one: pairs in order of score (ties: the earlier gold, then
  the earlier prediction), each gold entry and each prediction used once at most.

Counts (``Counts``), summed over meetings before any ratio (micro-averaged):

- action recall = matched / gold items; action precision = matched / predicted items;
- owner recall = matched items whose predicted owner is correct / gold items with an owner
  (an unmatched gold item counts as a miss); owner precision = the same correct owners /
  matched predicted items with a non-null owner (an owner invented for a gold item with none
  is wrong). A predicted owner is correct when, normalised (lowercase, words only), it equals
  the gold label, or the gold label's speaker name, or the gold name; a name may be followed
  by more words ("Jordan in legal" for "Jordan");
- due accuracy = matched items whose normalised due equals the gold's / matched items (null
  against null is correct). ``normalize_due`` drops punctuation, "the", "this", "a", leading
  "by", "before", "on", "until", "due", "at", "for", a trailing "at the latest", and reads
  "none", "not stated", "unspecified", "n/a", "tbd" as null;
- decisions and open questions: recall = matched / gold, precision = matched / predicted.

A ratio whose denominator is 0 is None (not measured), never 0 or 1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

from bench.notes_eval.eval_set import Meeting
from common.domain.notes import Notes

THRESHOLD = 0.5

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_DUE_FILLER = frozenset({"the", "this", "a"})
_DUE_LEAD = frozenset({"by", "before", "on", "until", "due", "at", "for"})
_DUE_NULL = frozenset(
    {"", "none", "null", "not stated", "not specified", "unspecified", "n a", "tbd"}
)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def _found(alternative: str, vocabulary: Sequence[str]) -> bool:
    needed = words(alternative)
    return bool(needed) and all(
        any(w.startswith(n) if len(n) >= 3 else w == n for w in vocabulary) for n in needed
    )


def keyword_found(keyword: str, text: str) -> bool:
    vocabulary = words(text)
    return any(_found(alternative, vocabulary) for alternative in keyword.split("|"))


def keyword_score(keywords: Sequence[str], text: str) -> float:
    """The share of ``keywords`` found in ``text``."""
    if not keywords:
        return 0.0
    return sum(keyword_found(k, text) for k in keywords) / len(keywords)


def match(
    gold: Sequence[Sequence[str]], predicted: Sequence[str], threshold: float = THRESHOLD
) -> list[tuple[int, int, float]]:
    """``(gold index, predicted index, score)`` of the greedy one-to-one matching of the
    predicted texts to the gold keyword lists, in gold order."""
    pairs = [
        (score, g, p)
        for g, keywords in enumerate(gold)
        for p, text in enumerate(predicted)
        if (score := keyword_score(keywords, text)) >= threshold
    ]
    pairs.sort(key=lambda t: (-t[0], t[1], t[2]))
    used_gold: set[int] = set()
    used_pred: set[int] = set()
    chosen: list[tuple[int, int, float]] = []
    for score, g, p in pairs:
        if g in used_gold or p in used_pred:
            continue
        used_gold.add(g)
        used_pred.add(p)
        chosen.append((g, p, score))
    return sorted(chosen)


def normalize_due(due: str | None) -> str | None:
    if due is None:
        return None
    said = [w for w in words(due) if w not in _DUE_FILLER]
    while said and said[0] in _DUE_LEAD:
        said = said[1:]
    if said[-2:] == ["at", "latest"]:  # "at the latest", once "the" is gone
        said = said[:-2]
    text = " ".join(said)
    return None if text in _DUE_NULL else text


def _name_words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9_]+", text.lower())


def owner_correct(predicted: str | None, gold: str | None, speakers: Mapping[str, str]) -> bool:
    """Whether ``predicted`` names ``gold``: its label, the label's name, or the name."""
    if predicted is None or gold is None:
        return False
    said = _name_words(predicted)
    if not said:
        return False
    if said == _name_words(gold):
        return True
    expected = _name_words(speakers.get(gold, gold))  # a label's speaker name, or the name
    return bool(expected) and said[: len(expected)] == expected


@dataclass(frozen=True)
class Counts:
    """What the ratios are made of; ``+`` sums them (micro-averaging)."""

    gold_items: int = 0
    predicted_items: int = 0
    matched_items: int = 0
    gold_owned: int = 0  # gold items with an owner
    predicted_owned_matched: int = 0  # matched predictions with an owner
    owner_correct: int = 0  # matched predictions whose owner is the gold one
    due_correct: int = 0  # matched predictions whose due is the gold one (null == null)
    gold_decisions: int = 0
    predicted_decisions: int = 0
    matched_decisions: int = 0
    gold_questions: int = 0
    predicted_questions: int = 0
    matched_questions: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    @property
    def action_recall(self) -> float | None:
        return _ratio(self.matched_items, self.gold_items)

    @property
    def action_precision(self) -> float | None:
        return _ratio(self.matched_items, self.predicted_items)

    @property
    def owner_recall(self) -> float | None:
        return _ratio(self.owner_correct, self.gold_owned)

    @property
    def owner_precision(self) -> float | None:
        return _ratio(self.owner_correct, self.predicted_owned_matched)

    @property
    def due_accuracy(self) -> float | None:
        return _ratio(self.due_correct, self.matched_items)

    @property
    def decisions_recall(self) -> float | None:
        return _ratio(self.matched_decisions, self.gold_decisions)

    @property
    def decisions_precision(self) -> float | None:
        return _ratio(self.matched_decisions, self.predicted_decisions)

    @property
    def questions_recall(self) -> float | None:
        return _ratio(self.matched_questions, self.gold_questions)

    @property
    def questions_precision(self) -> float | None:
        return _ratio(self.matched_questions, self.predicted_questions)

    def ratios(self) -> dict[str, float | None]:
        return {name: getattr(self, name) for name in RATIOS}


RATIOS = (
    "owner_recall",
    "owner_precision",
    "action_recall",
    "action_precision",
    "due_accuracy",
    "decisions_recall",
    "decisions_precision",
    "questions_recall",
    "questions_precision",
)


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class ItemMatch:
    gold_task: str
    predicted_task: str
    score: float
    gold_owner: str | None
    predicted_owner: str | None
    owner_ok: bool
    gold_due: str | None
    predicted_due: str | None
    due_ok: bool


@dataclass(frozen=True)
class MeetingScore:
    meeting_id: str
    counts: Counts
    matches: list[ItemMatch] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)  # gold tasks no prediction matched
    extra: list[str] = field(default_factory=list)  # predicted tasks matching no gold


def score_meeting(meeting: Meeting, notes: Notes, threshold: float = THRESHOLD) -> MeetingScore:
    gold = meeting.gold
    predicted = notes.action_items
    pairs = match([g.keywords for g in gold.action_items], [p.task for p in predicted], threshold)
    matches: list[ItemMatch] = []
    for g, p, score in pairs:
        want, got = gold.action_items[g], predicted[p]
        matches.append(
            ItemMatch(
                gold_task=want.task,
                predicted_task=got.task,
                score=round(score, 3),
                gold_owner=want.owner,
                predicted_owner=got.owner,
                owner_ok=owner_correct(got.owner, want.owner, meeting.speakers),
                gold_due=want.due,
                predicted_due=got.due,
                due_ok=normalize_due(got.due) == normalize_due(want.due),
            )
        )
    decisions = match([d.keywords for d in gold.decisions], [d.text for d in notes.decisions])
    questions = match(
        [q.keywords for q in gold.open_questions], [q.text for q in notes.open_questions]
    )
    matched_gold = {g for g, _, _ in pairs}
    matched_pred = {p for _, p, _ in pairs}
    counts = Counts(
        gold_items=len(gold.action_items),
        predicted_items=len(predicted),
        matched_items=len(pairs),
        gold_owned=sum(item.owner is not None for item in gold.action_items),
        predicted_owned_matched=sum(m.predicted_owner is not None for m in matches),
        owner_correct=sum(m.owner_ok for m in matches),
        due_correct=sum(m.due_ok for m in matches),
        gold_decisions=len(gold.decisions),
        predicted_decisions=len(notes.decisions),
        matched_decisions=len(decisions),
        gold_questions=len(gold.open_questions),
        predicted_questions=len(notes.open_questions),
        matched_questions=len(questions),
    )
    return MeetingScore(
        meeting_id=meeting.id,
        counts=counts,
        matches=matches,
        missed=[g.task for i, g in enumerate(gold.action_items) if i not in matched_gold],
        extra=[p.task for i, p in enumerate(predicted) if i not in matched_pred],
    )


def aggregate(scores: Sequence[MeetingScore]) -> Counts:
    """Micro-averaging: the counts of every meeting summed (ratios are taken after)."""
    total = Counts()
    for s in scores:
        total = total + s.counts
    return total
