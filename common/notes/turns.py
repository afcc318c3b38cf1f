"""A transcript as the notes see it: plain segment texts, or speaker turns a line.

With speakers, what a model (and the extractive engine) reads is one turn a line,
``SPEAKER_1: words``, built from the segments' labels and never from the names given to them:
notes keep the labels, so renaming a speaker only re-renders them. Without speakers it is the
segments' texts, as before speakers existed. The same pieces are what the notes cache keys on,
so the same words said by other speakers do not reuse notes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from common.domain.speakers import LABEL_PATTERN
from common.domain.transcripts import Transcript

_TURN_LINE = re.compile(rf"^({LABEL_PATTERN}): (.*)$")


def notes_pieces(transcript: Transcript) -> list[str]:
    """What notes are made from: ``transcript.pieces``, or one ``LABEL: text`` line a turn
    (consecutive segments of one speaker joined) when the segments carry speakers."""
    spoken = [s for s in transcript.segments if s.text.strip()]
    labels = [s.speaker for s in spoken]
    if not any(labels):
        return transcript.pieces
    # A segment the diarizer left unlabelled stays with the speaker before it (or after it).
    filled: list[str] = []
    pending = 0
    for speaker in labels:
        if speaker is None:
            if filled:
                filled.append(filled[-1])
            else:
                pending += 1
            continue
        filled.extend([speaker] * (pending + 1))
        pending = 0
    lines: list[tuple[str, list[str]]] = []
    for speaker, seg in zip(filled, spoken, strict=True):
        text = " ".join(seg.text.split())
        if lines and lines[-1][0] == speaker:
            lines[-1][1].append(text)
        else:
            lines.append((speaker, [text]))
    return [turn_line(speaker, " ".join(words)) for speaker, words in lines]


def turn_line(speaker: str, text: str) -> str:
    return f"{speaker}: {text}"


def split_turn(line: str) -> tuple[str | None, str]:
    """``(label, text)`` of a turn line; ``(None, line)`` for a line that is not one."""
    match = _TURN_LINE.match(line.strip())
    return (match.group(1), match.group(2)) if match else (None, line)


def parse_turns(text: str) -> list[tuple[str, str]] | None:
    """The turns of a text made of turn lines; None when it is plain text (no speakers)."""
    lines = [line for line in text.splitlines() if line.strip()]
    turns = [split_turn(line) for line in lines]
    if not turns or any(speaker is None for speaker, _ in turns):
        return None
    return [(str(speaker), words) for speaker, words in turns]


def has_turns(text: str) -> bool:
    return parse_turns(text) is not None


def split_pieces(text: str) -> list[str]:
    """The pieces of a text ``join_pieces`` made: its turn lines, or the text itself."""
    turns = parse_turns(text)
    return [text] if turns is None else [turn_line(s, words) for s, words in turns]


def join_pieces(pieces: Sequence[str]) -> str:
    """One text of ``pieces``: turns keep a line each, plain segments join with spaces."""
    if pieces and all(split_turn(p)[0] is not None for p in pieces):
        return "\n".join(" ".join(p.split()) for p in pieces)
    return " ".join(pieces)
