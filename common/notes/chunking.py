"""Token-bounded chunks of a transcript, cut at segment (else sentence, else word) boundaries.

A transcript with speakers comes as turn lines (``common.notes.turns``): chunks are cut
between turns, keep a turn a line, and a turn too long for one chunk is cut with its label
repeated on every part, so that each chunk still says who spoke.

Token counts are estimated at four characters a token (OpenAI's rule of thumb for English);
chunk budgets leave room for that error, and the provider's reported usage is what is billed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

from common.notes.turns import join_pieces, split_turn, turn_line

CHARS_PER_TOKEN = 4
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def chunk_texts(pieces: Sequence[str], max_tokens: int) -> list[str]:
    """Pack ``pieces`` (segment texts or turn lines) in order into chunks of at most
    ``max_tokens``."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for piece in _bounded(pieces, max_tokens):
        cost = estimate_tokens(piece) + 1
        if current and size + cost > max_tokens:
            chunks.append(join_pieces(current))
            current, size = [], 0
        current.append(piece)
        size += cost
    if current:
        chunks.append(join_pieces(current))
    return chunks


def _bounded(pieces: Iterable[str], max_tokens: int) -> Iterable[str]:
    for piece in pieces:
        piece = " ".join(piece.split())
        if not piece:
            continue
        if estimate_tokens(piece) < max_tokens:
            yield piece
            continue
        speaker, text = split_turn(piece)
        if speaker is None:
            yield from _parts(piece, max_tokens)
        else:
            room = max_tokens - estimate_tokens(turn_line(speaker, ""))
            yield from (turn_line(speaker, part) for part in _parts(text, max(room, 1)))


def _parts(text: str, max_tokens: int) -> Iterable[str]:
    for sentence in _SENTENCE_END.split(text):
        if estimate_tokens(sentence) < max_tokens:
            yield sentence
            continue
        words = sentence.split()
        step = max(1, (max_tokens * CHARS_PER_TOKEN) // 8)  # words are ~7 chars with a space
        for i in range(0, len(words), step):
            yield " ".join(words[i : i + step])
