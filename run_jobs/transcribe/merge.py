"""Chunk results -> one transcript: timestamps already on the file's timeline, and each word
kept once where neighbouring chunks overlap.

Chunk ``i`` owns ``[boundary(i), boundary(i + 1))``. A word belongs to the chunk that owns its
middle; a segment keeps the words it owns (and is dropped if it owns none). Overlap gives
every word near a boundary full context in at least one chunk, and this rule keeps exactly
one copy of it.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, Field

from common.transcription_plan import ChunkPlan
from common.transcripts import Segment, Transcript


class ChunkResult(BaseModel):
    """What one task writes: its window's segments, with times on the file's timeline."""

    plan_key: str
    index: int = Field(ge=0)
    window_start_s: float = Field(ge=0)
    window_end_s: float | None = None
    language: str
    language_probability: float | None = None
    segments: list[Segment]
    options: dict[str, Any] = Field(default_factory=dict)


def shift(segments: list[Segment], offset_s: float) -> list[Segment]:
    """Move segments (and their words) from window time to file time."""
    out = []
    for seg in segments:
        words = [
            w.model_copy(update={"start": w.start + offset_s, "end": w.end + offset_s})
            for w in seg.words
        ]
        out.append(
            seg.model_copy(
                update={"start": seg.start + offset_s, "end": seg.end + offset_s, "words": words}
            )
        )
    return out


def merge(plan: ChunkPlan, chunks: list[ChunkResult]) -> Transcript:
    indexes = sorted(c.index for c in chunks)
    if indexes != list(range(plan.chunk_count)):
        raise ValueError(f"merge needs chunks 0..{plan.chunk_count - 1}, got {indexes}")
    ordered = sorted(chunks, key=lambda c: c.index)
    segments: list[Segment] = []
    for chunk in ordered:
        low = plan.boundary(chunk.index) if chunk.index > 0 else -math.inf
        last = chunk.index == plan.chunk_count - 1
        high = math.inf if last else plan.boundary(chunk.index + 1)
        segments += [s for s in (_owned(seg, low, high) for seg in chunk.segments) if s]
    language = _language(ordered)
    first = next(c for c in ordered if c.language == language)
    return Transcript(
        job_id=plan.job_id,
        language=language,
        language_probability=first.language_probability,
        duration_s=plan.duration_s,
        model=plan.model,
        segments=segments,
        options={
            **first.options,
            "chunk_seconds": plan.chunk_seconds,
            "chunk_overlap_s": plan.overlap_s,
            "chunk_count": plan.chunk_count,
        },
    )


def _owned(seg: Segment, low: float, high: float) -> Segment | None:
    if not seg.words:
        middle = (seg.start + seg.end) / 2
        return seg if low <= middle < high else None
    words = [w for w in seg.words if low <= (w.start + w.end) / 2 < high]
    if not words:
        return None
    if len(words) == len(seg.words):
        return seg
    return seg.model_copy(
        update={
            "start": words[0].start,
            "end": words[-1].end,
            "text": "".join(w.word for w in words),
            "words": words,
        }
    )


def _language(chunks: list[ChunkResult]) -> str:
    """The language spoken longest (each chunk detects its own)."""
    spoken: dict[str, float] = {}
    for chunk in chunks:
        talk = sum(s.end - s.start for s in chunk.segments)
        spoken[chunk.language] = spoken.get(chunk.language, 0.0) + talk + 1e-9
    return max(spoken, key=lambda lang: spoken[lang])
