"""Notes that hold to the transcript: after a model has answered, remove what nothing said
supports.

A model (a small local one most of all) fills strict-schema fields it should leave null:
owners nobody named, dates nobody said. ``ground`` checks the fields that claim a fact of the
recording against the transcript the notes were made from, and removes the unsupported ones
(tasks, decisions and summaries are paraphrases and stay):

- an owner or raised_by must be a speaker label of the turns (``SPEAKER_2`` when a line is
  ``SPEAKER_2: ...``), or a name said in the transcript (case- and accent-insensitive, whole
  words; a longer name counts when its full form or its first name is said). A label that no
  turn has, a label in a transcript without turns, a pronoun or a placeholder ("unknown") is
  set to null. ``speaker``, the extractive engine's owner of a first-person commitment in a
  transcript without turns, is kept when someone says "I";
- a due date must be said: its key words (weekday, month, day number, year, "tomorrow",
  "end of the week", "next week", "Q3", a time) all said close together, after normalising
  case, punctuation, ordinals and number words ("the third" is "3rd"). "Friday" when
  "Friday" is said stays; "2024-05-03" when only "Friday" is said goes;
- a person must be a name said in the transcript, never a speaker label.

The labels are matched only as labels, never as words: "SPEAKER_2" is not "said" by a line
that starts with it, and a name is looked for in what was said, not in the labels.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from common.domain.notes import ActionItem, Dropped, Notes, Raised
from common.notes.extractive import STOPWORDS
from common.notes.turns import split_turn

NOT_IN_TURNS = "speaker label not in the transcript's turns"
NOT_SAID = "not said in the transcript"
NOT_A_NAME = "not a speaker label or a name"
LABEL_NOT_PERSON = "a speaker label, not a person's name"
COPIED = "copied from the prompt's worked example, not said in the transcript"

# "Speaker 2", "speaker_2", "SPEAKER-2": a label however it is spelled, judged as a label only.
_LABEL_LIKE = re.compile(r"^speaker[\s_-]*#?\s*([0-9]+)$", re.IGNORECASE)
_TOKEN = re.compile(r"[^\W\d_]+|\d+")


def _split(text: str) -> list[str]:
    return text.split()


# Who is nobody in particular, or a model's way of writing null.
_NOBODY = frozenset(
    _split(
        """i me my myself we us our you your he him his she her they them their it someone
    somebody anyone anybody everyone everybody nobody none null nil unknown unassigned tbd
    tba n a na team all"""
    )
)
_HONORIFICS = frozenset(_split("mr mrs ms miss dr prof professor sir madam"))
FIRST_PERSON_OWNER = "speaker"

_WEEKDAYS = _split("monday tuesday wednesday thursday friday saturday sunday")
_MONTHS = _split(
    "january february march april may june july august september october november december"
)
# Only for the due a model wrote: in speech "sat", "sun" or "jan" are other words.
_ABBREVIATIONS = {
    **{d[:3]: d for d in _WEEKDAYS},
    "tues": "tuesday",
    "thur": "thursday",
    "thurs": "thursday",
    **{m[:3]: m for m in _MONTHS},
    "sept": "september",
    "eod": "end day",
    "eow": "end week",
    "eom": "end month",
    "tmrw": "tomorrow",
}
_UNITS = _split(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
)
_ORDINALS = _split(
    "zeroth first second third fourth fifth sixth seventh eighth ninth tenth eleventh "
    "twelfth thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth"
)
_NUMBERS = {w: i for i, w in enumerate(_UNITS)} | {w: i for i, w in enumerate(_ORDINALS)}
_TENS = {"twenty": 20, "thirty": 30, "twentieth": 20, "thirtieth": 30}
_PLURALS = {f"{w}s": w for w in [*_WEEKDAYS, "day", "week", "month", "year", "hour", "minute"]}
_PLURALS["quarters"] = "quarter"
# Words of a due that say nothing about when ("by the end of the week": end, week).
_FILLER = frozenset(
    _split(
        """by on the of at before until till til due in a an around about approximately latest
    or and this coming upcoming is it be to from now s st nd rd th"""
    )
)
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")


@dataclass(frozen=True)
class _Heard:
    """What the transcript says, ready to be asked."""

    labels: frozenset[str]
    words: tuple[str, ...]  # the spoken words, normalised (labels left out)
    word_set: frozenset[str]
    when: dict[str, list[int]]  # date-normalised words and where they are
    turns: bool

    @classmethod
    def of(cls, transcript: str | Sequence[str]) -> _Heard:
        pieces = [transcript] if isinstance(transcript, str) else list(transcript)
        labels: set[str] = set()
        spoken: list[str] = []
        for line in (line for piece in pieces for line in piece.splitlines()):
            label, said = split_turn(line)
            if label is not None:
                labels.add(label)
            spoken.append(said)
        words = tuple(_words(" ".join(spoken)))
        when: dict[str, list[int]] = {}
        for i, token in enumerate(_date_tokens(" ".join(spoken), abbreviations=False)):
            when.setdefault(token, []).append(i)
        return cls(frozenset(labels), words, frozenset(words), when, bool(labels))

    def says(self, name: Sequence[str]) -> bool:
        """Whether the words ``name`` are said, in order and whole."""
        if not name or name[0] not in self.word_set:
            return False
        n = len(name)
        return any(
            tuple(self.words[i : i + n]) == tuple(name)
            for i, word in enumerate(self.words)
            if word == name[0]
        )


def ground(
    notes: Notes, transcript: str | Sequence[str], *, example: Notes | None = None
) -> tuple[Notes, list[Dropped]]:
    """``notes`` without what ``transcript`` (its text, or the pieces the notes were made
    from: segment texts or turn lines) does not support, and what was removed. ``example``:
    the worked example the prompt showed; an item copied from it whose words the transcript
    does not say is removed whole."""
    heard = _Heard.of(transcript)
    dropped: list[Dropped] = []
    if example is not None:
        notes = _without_copies(notes, example, heard, dropped)

    def who(field: str, value: str | None) -> str | None:
        if value is None:
            return None
        kept, reason = _who(value, heard)
        if reason is not None:
            dropped.append(Dropped(field=field, value=value, reason=reason))
        return kept

    items: list[ActionItem] = []
    for i, item in enumerate(notes.action_items):
        owner = who(f"action_items[{i}].owner", item.owner)
        due = item.due
        if due is not None and not _due_said(due, heard):
            dropped.append(Dropped(field=f"action_items[{i}].due", value=due, reason=NOT_SAID))
            due = None
        raised_by = who(f"action_items[{i}].raised_by", item.raised_by)
        items.append(item.model_copy(update={"owner": owner, "due": due, "raised_by": raised_by}))

    def raised(key: str, entries: list[Raised]) -> list[Raised]:
        return [
            r.model_copy(update={"raised_by": who(f"{key}[{i}].raised_by", r.raised_by)})
            for i, r in enumerate(entries)
        ]

    people: list[str] = []
    for person in notes.people:
        reason = _person(person, heard)
        if reason is None:
            people.append(person)
        else:
            dropped.append(Dropped(field="people", value=person, reason=reason))
    grounded = notes.model_copy(
        update={
            "action_items": items,
            "decisions": raised("decisions", notes.decisions),
            "open_questions": raised("open_questions", notes.open_questions),
            "people": people,
        }
    )
    return grounded, dropped


def _without_copies(notes: Notes, example: Notes, heard: _Heard, dropped: list[Dropped]) -> Notes:
    def key(text: str) -> tuple[str, ...]:
        return tuple(_words(text))

    def unsaid_copy(text: str, seen: set[tuple[str, ...]]) -> bool:
        words = key(text)
        return words in seen and not set(words) <= heard.word_set

    tasks = {key(i.task) for i in example.action_items}
    raised = {key(r.text) for r in [*example.decisions, *example.open_questions]}
    update: dict[str, list[Any]] = {"action_items": []}
    for item in notes.action_items:
        if unsaid_copy(item.task, tasks):
            dropped.append(Dropped(field="action_items", value=item.task, reason=COPIED))
        else:
            update["action_items"].append(item)
    for field in ("decisions", "open_questions"):
        update[field] = []
        for entry in getattr(notes, field):
            if unsaid_copy(entry.text, raised):
                dropped.append(Dropped(field=field, value=entry.text, reason=COPIED))
            else:
                update[field].append(entry)
    return notes.model_copy(update=update)


def _who(value: str, heard: _Heard) -> tuple[str | None, str | None]:
    """``(what to keep, why not)`` for an owner or raised_by."""
    text = value.strip()
    label = _LABEL_LIKE.match(text)
    if label is not None:
        canonical = f"SPEAKER_{int(label.group(1))}"
        # "Speaker 2" for SPEAKER_2 is the label misspelt: kept, as the label.
        return (canonical, None) if canonical in heard.labels else (None, NOT_IN_TURNS)
    if text.casefold() == FIRST_PERSON_OWNER:
        said_i = not heard.turns and "i" in heard.word_set
        return (value, None) if said_i else (None, NOT_A_NAME)
    reason = _name(text, heard)
    return (value, None) if reason is None else (None, reason)


def _person(value: str, heard: _Heard) -> str | None:
    if _LABEL_LIKE.match(value.strip()):
        return LABEL_NOT_PERSON
    return _name(value, heard)


def _name(value: str, heard: _Heard) -> str | None:
    """Why ``value`` is not a name said in the transcript; None when it is one."""
    tokens = _words(value)
    if not tokens or all(t in _NOBODY or t in _HONORIFICS for t in tokens):
        return NOT_A_NAME
    if heard.says(tokens):
        return None
    first = next(t for t in tokens if t not in _HONORIFICS)
    if len(tokens) > 1 and len(first) > 1 and first not in STOPWORDS | _NOBODY:
        return None if heard.says([first]) else NOT_SAID
    return NOT_SAID


def _due_said(due: str, heard: _Heard) -> bool:
    keys = [t for t in _date_tokens(due, abbreviations=True) if t not in _FILLER]
    if not keys:
        return False
    window = max(6, 2 * len(keys))
    positions = [heard.when.get(k) for k in dict.fromkeys(keys)]
    if any(not p for p in positions):
        return False
    lists = [p for p in positions if p]
    anchors = min(lists, key=len)
    return any(all(_within(p, a, window) for p in lists) for a in anchors)


def _within(positions: list[int], anchor: int, window: int) -> bool:
    i = bisect.bisect_left(positions, anchor - window)
    return i < len(positions) and positions[i] <= anchor + window


def _words(text: str) -> list[str]:
    """Lower-case, accent-free letter runs and digit runs: "José's 3pm" is josé, s, 3, pm."""
    plain = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in plain if not unicodedata.combining(c)).casefold()
    return _TOKEN.findall(plain)


def _date_tokens(text: str, *, abbreviations: bool) -> list[str]:
    """Words of dates and times in one spelling: "the twenty-first", "21st" and "21" are 21;
    "p.m." is pm; "third quarter" and "Q3" are q3; "2024-05-03" is may 3 2024."""
    text = _ISO_DATE.sub(
        lambda m: (
            f"{_MONTHS[int(m.group(2)) - 1]} {int(m.group(3))} {m.group(1)}"
            if 1 <= int(m.group(2)) <= 12
            else m.group(0)
        ),
        text,
    )
    text = re.sub(r"\bno later than\b", " ", text, flags=re.IGNORECASE)
    text = re.sub(r"\bas soon as possible\b", " asap ", text, flags=re.IGNORECASE)
    raw = _words(text)
    if abbreviations:
        raw = [w for t in raw for w in _ABBREVIATIONS.get(t, t).split()]
    out: list[str] = []
    tens = False  # the last word was "twenty" or "thirty"
    for token in raw:
        token = _PLURALS.get(token, token)
        after_tens, tens = tens, token in _TENS
        if token.isdigit():
            token = str(int(token))
        elif token in _NUMBERS:
            number = _NUMBERS[token]
            if after_tens and 0 < number < 10:
                out[-1] = str(int(out[-1]) + number)  # twenty first
                continue
            token = str(number)
        elif token in _TENS:
            token = str(_TENS[token])
        elif token == "m" and out and out[-1] in ("a", "p"):
            out[-1] += "m"  # a.m., p.m.
            continue
        elif token == "midday":
            token = "noon"
        elif token == "quarter" and out and out[-1] in ("1", "2", "3", "4"):
            out[-1] = f"q{out[-1]}"
            continue
        if token.isdigit() and out and out[-1] == "q":
            out[-1] = f"q{token}"
            continue
        out.append(token)
    return out
