"""Who spoke when: the ``speakers`` option, speaker turns, and putting words in speakers' mouths.

Pure domain code. The diarizer (``run_jobs/transcribe/speakers``) finds ``Turn``s over the whole
file; ``assign`` gives every word the speaker whose turns overlap it most (the nearest turn when
none does), splits segments where the speaker changes, and labels speakers ``SPEAKER_1``,
``SPEAKER_2``, ... in the order they first speak. Names (``PUT /v1/jobs/{id}/speakers``) are a
mapping from those labels, applied when a transcript or notes are rendered: nothing is
transcribed again to rename.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field

from common.domain.errors import InvalidInput

# How many speakers "auto" may find, and the most a count or range may ask for.
MAX_SPEAKERS = 20
LABEL_PATTERN = r"SPEAKER_[1-9][0-9]*"
_LABEL = re.compile(f"^{LABEL_PATTERN}$")
_SPEC = re.compile(r"^(?:(auto|none)|([1-9][0-9]*)|([1-9][0-9]*)-([1-9][0-9]*))$")
SPEAKERS_DESCRIPTION = (
    "'auto' (find how many), an exact count ('3'), a range ('2-5'), or 'none' (no speaker "
    f"labels); at most {MAX_SPEAKERS}. Default: 'auto' for meeting, interview and lecture "
    "notes, 'none' for a voice memo (diary)"
)
MAX_NAME_CHARS = 60
_NAME = re.compile(r"^[^\x00-\x1f\x7f]+$")


class BadSpeakers(InvalidInput):
    code = "bad_speakers"


@dataclass(frozen=True)
class SpeakerSpec:
    """How many speakers to look for, as bounds ("auto" is 1..MAX_SPEAKERS); ``enabled``
    False is "none": no diarization at all, and no model loaded."""

    min_speakers: int = 1
    max_speakers: int = MAX_SPEAKERS
    enabled: bool = True

    @classmethod
    def parse(cls, value: str | int) -> SpeakerSpec:
        text = str(value).strip().lower()
        match = _SPEC.match(text)
        if match is None:
            raise BadSpeakers(
                f"speakers must be 'auto', 'none', a count such as '2' or a range such as "
                f"'2-5', not {str(value)!r}"
            )
        word, count, low, high = match.groups()
        if word == "none":
            return cls(enabled=False)
        if word == "auto":
            return cls()
        lo, hi = (int(count), int(count)) if count else (int(low), int(high))
        if lo > hi:
            raise BadSpeakers(f"speakers range {text!r} runs backwards; write '{hi}-{lo}'")
        if hi > MAX_SPEAKERS:
            raise BadSpeakers(f"speakers {text!r} asks for more than {MAX_SPEAKERS} speakers")
        return cls(min_speakers=lo, max_speakers=hi)

    def __str__(self) -> str:
        if not self.enabled:
            return "none"
        if (self.min_speakers, self.max_speakers) == (1, MAX_SPEAKERS):
            return "auto"
        if self.min_speakers == self.max_speakers:
            return str(self.min_speakers)
        return f"{self.min_speakers}-{self.max_speakers}"


def normalized(value: str | int) -> str:
    """The option as stored: ``'auto'``, ``'none'``, ``'3'`` or ``'2-5'`` (validated)."""
    return str(SpeakerSpec.parse(value))


class Turn(BaseModel):
    """One stretch of one speaker's speech, on the file's timeline."""

    start: float = Field(ge=0)
    end: float = Field(ge=0)
    speaker: str


class SpeakerTalk(BaseModel):
    """How much one speaker said: what the notes and the job report per speaker."""

    speaker: str
    name: str | None = None
    talk_s: float = Field(ge=0)
    share: float = Field(ge=0, le=1)
    turns: int = Field(ge=0)


def label(n: int) -> str:
    return f"SPEAKER_{n}"


def relabel_by_first_turn(turns: Sequence[Turn]) -> list[Turn]:
    """Labels SPEAKER_1.. in the order speakers are first heard, turns in time order."""
    ordered = sorted(turns, key=lambda t: (t.start, t.end))
    names: dict[str, str] = {}
    for turn in ordered:
        names.setdefault(turn.speaker, label(len(names) + 1))
    return [t.model_copy(update={"speaker": names[t.speaker]}) for t in ordered]


def talk_time(turns: Sequence[Turn], names: Mapping[str, str] | None = None) -> list[SpeakerTalk]:
    """Seconds each speaker holds the floor, most first (overlapping speech counts for each)."""
    spoken: dict[str, float] = {}
    count: dict[str, int] = {}
    for t in turns:
        spoken[t.speaker] = spoken.get(t.speaker, 0.0) + max(0.0, t.end - t.start)
        count[t.speaker] = count.get(t.speaker, 0) + 1
    total = sum(spoken.values())
    names = names or {}
    return [
        SpeakerTalk(
            speaker=s,
            name=names.get(s),
            talk_s=round(seconds, 2),
            share=round(seconds / total, 4) if total else 0.0,
            turns=count[s],
        )
        for s, seconds in sorted(spoken.items(), key=lambda kv: (-kv[1], _order(kv[0])))
    ]


def _order(speaker: str) -> int:
    return int(speaker.rsplit("_", 1)[1]) if _LABEL.match(speaker) else 0


def speaker_at(start: float, end: float, turns: Sequence[Turn]) -> str | None:
    """The speaker whose turns overlap ``[start, end]`` most; with none overlapping, the one
    whose turn is nearest (a word said in a pause the diarizer left out)."""
    if not turns:
        return None
    overlap: dict[str, float] = {}
    for t in turns:
        shared = min(end, t.end) - max(start, t.start)
        if shared > 0:
            overlap[t.speaker] = overlap.get(t.speaker, 0.0) + shared
    if overlap:
        return max(overlap, key=lambda s: (overlap[s], -_order(s)))
    middle = (start + end) / 2
    nearest = min(turns, key=lambda t: min(abs(middle - t.start), abs(middle - t.end)))
    return nearest.speaker


def check_names(names: Mapping[str, str | None], known: Sequence[str]) -> dict[str, str | None]:
    """A rename request, validated: known labels only, printable names of at most
    MAX_NAME_CHARS, no two speakers given one name; ``None`` or "" restores the label."""
    if not names:
        raise InvalidInput(
            'name at least one speaker, e.g. {"SPEAKER_1": "Priya"}', code="no_speakers_named"
        )
    unknown = sorted(set(names) - set(known))
    if unknown:
        have = ", ".join(known) or "none"
        raise InvalidInput(
            f"no speaker {', '.join(unknown)} in this transcript (it has {have})",
            code="unknown_speaker",
        )
    clean: dict[str, str | None] = {}
    for speaker, name in names.items():
        text = " ".join(name.split()) if name else ""
        if len(text) > MAX_NAME_CHARS or (text and not _NAME.match(text)):
            raise InvalidInput(
                f"the name for {speaker} must be 1-{MAX_NAME_CHARS} printable characters",
                code="bad_speaker_name",
            )
        clean[speaker] = text or None
    return clean


def renamed(current: Mapping[str, str], change: Mapping[str, str | None]) -> dict[str, str]:
    """``current`` names with ``change`` applied (None removes a name); two speakers may not
    share a name, since every rendering would then merge them."""
    names = {k: v for k, v in current.items() if k not in change}
    names.update({k: v for k, v in change.items() if v})
    taken: dict[str, str] = {}
    for speaker, name in sorted(names.items()):
        if name.casefold() in taken:
            raise InvalidInput(
                f"{speaker} and {taken[name.casefold()]} would both be called {name!r}",
                code="duplicate_speaker_name",
            )
        taken[name.casefold()] = speaker
    return names


def display(speaker: str | None, names: Mapping[str, str]) -> str | None:
    return None if speaker is None else names.get(speaker, speaker)
