"""The meetings of the evaluation set, and the pieces the notes engine reads from each.

A meeting file is ``{"id", "title", "speakers", "turns", "gold"}`` (``README.md`` says what the
gold fields mean). Its pieces are made the way production makes them: a ``Transcript`` whose
segments carry the turns' speaker labels, through ``common.notes.turns.notes_pieces``, so the
engine reads one ``SPEAKER_1: words`` line a turn, exactly as it does after diarization.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from common.domain.speakers import LABEL_PATTERN
from common.domain.transcripts import Segment, Transcript
from common.notes.turns import notes_pieces

MEETINGS_DIR = Path(__file__).resolve().parent / "meetings"
# The segments' times are made up at 150 words a minute; nothing reads them but talk time.
WORDS_PER_SECOND = 2.5

_LABEL = re.compile(rf"^{LABEL_PATTERN}$")


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    speaker: str
    text: str


class GoldActionItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: str
    owner: str | None  # a speaker label, a non-speaker's name as said, or null
    due: str | None  # as spoken, or null when not stated
    keywords: list[str] = Field(min_length=1)


class GoldRaised(BaseModel):
    """A decision or an open question."""

    model_config = ConfigDict(extra="forbid")

    text: str
    keywords: list[str] = Field(min_length=1)


class Gold(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action_items: list[GoldActionItem]
    decisions: list[GoldRaised]
    open_questions: list[GoldRaised]


class Meeting(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    title: str
    speakers: dict[str, str]  # label -> name
    turns: list[Turn] = Field(min_length=1)
    gold: Gold

    @property
    def words(self) -> int:
        return sum(len(turn.text.split()) for turn in self.turns)

    def transcript(self) -> Transcript:
        """The meeting as the transcribe worker would leave it: one segment a turn."""
        segments: list[Segment] = []
        clock = 0.0
        for turn in self.turns:
            length = max(len(turn.text.split()) / WORDS_PER_SECOND, 0.5)
            segments.append(
                Segment(start=clock, end=clock + length, text=" " + turn.text, speaker=turn.speaker)
            )
            clock += length + 0.3
        return Transcript(
            job_id=f"notes-eval-{self.id}",
            language="en",
            duration_s=clock,
            model="hand-written",
            segments=segments,
        )

    def pieces(self) -> list[str]:
        """What ``NotesEngine.generate`` is given: one ``LABEL: text`` line a turn."""
        return notes_pieces(self.transcript())

    def problems(self) -> list[str]:
        """What is inconsistent in the file (empty when it is sound)."""
        found: list[str] = []
        text = " ".join(turn.text for turn in self.turns)
        names = {name.lower() for name in self.speakers.values()}
        for label in self.speakers:
            if not _LABEL.match(label):
                found.append(f"speaker key {label!r} is not a label like SPEAKER_1")
        used = {turn.speaker for turn in self.turns}
        for label in sorted(used - set(self.speakers)):
            found.append(f"turns use {label}, which speakers does not declare")
        for label in sorted(set(self.speakers) - used):
            found.append(f"{label} is declared but never speaks")
        for before, after in zip(self.turns, self.turns[1:], strict=False):
            if before.speaker == after.speaker:
                found.append(f"two turns of {before.speaker} in a row (production joins them)")
        for item in self.gold.action_items:
            owner = item.owner
            if owner is None:
                continue
            if _LABEL.match(owner):
                if owner not in self.speakers:
                    found.append(f"owner {owner} of {item.task!r} is not a declared speaker")
            elif owner.lower() in names:
                found.append(f"owner {owner!r} of {item.task!r} is a speaker: use the label")
            elif not re.search(rf"\b{re.escape(owner)}\b", text):
                found.append(f"owner {owner!r} of {item.task!r} is never said in the turns")
        for kind, entries in (
            ("action item", [(i.task, i.keywords) for i in self.gold.action_items]),
            ("decision", [(d.text, d.keywords) for d in self.gold.decisions]),
            ("open question", [(q.text, q.keywords) for q in self.gold.open_questions]),
        ):
            for what, keywords in entries:
                if any(not k.strip() or any(not a.strip() for a in k.split("|")) for k in keywords):
                    found.append(f"{kind} {what!r} has an empty keyword or alternative")
        return found


def load_meeting(path: Path) -> Meeting:
    return Meeting.model_validate_json(path.read_text(encoding="utf-8"))


def load_meetings(directory: Path = MEETINGS_DIR, only: Sequence[str] = ()) -> list[Meeting]:
    """Every ``*.json`` meeting in ``directory``, by id; ``only``: these ids (an unknown id is an
    error, so that a typo does not silently shrink the set)."""
    meetings = sorted((load_meeting(path) for path in directory.glob("*.json")), key=lambda m: m.id)
    if not only:
        return meetings
    known = {m.id for m in meetings}
    unknown = [i for i in only if i not in known]
    if unknown:
        raise ValueError(f"no meeting {', '.join(unknown)} in {directory} (known: {sorted(known)})")
    return [m for m in meetings if m.id in set(only)]
