"""Chunk results -> one transcript: timestamps already on the file's timeline, and each word
kept once where neighbouring chunks overlap.

Chunk ``i`` owns ``[cut(i), cut(i + 1))``, where ``cut(i)`` is the start cut chunk ``i``
recorded (a pause found by VAD, see ``cuts.py``; ``boundary(i)`` for results that predate it).
Each cut is read from one side only, the later chunk, so even neighbours that disagreed could
leave neither a gap nor a duplicate. A word belongs to the chunk that owns its middle; a segment
keeps the words it owns (and is dropped if it owns none). The segments the hallucination guard
dropped follow the same rule, by their middles, into ``Transcript.dropped_segments``.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, Field

from common.domain.transcription_plan import ChunkPlan
from common.domain.transcripts import DroppedSegment, Segment, Transcript
from common.obs.logs import get_logger
from run_jobs.transcribe.coverage import within

log = get_logger(__name__)

# Counters each chunk reports in its options; the transcript carries their sums.
_SUMMED = (
    "decode_windows",
    "redecoded_windows",
    "redecoded_kept",
    "redecoded_s",
    "guard_redecoded_windows",
    "coverage_redecoded_windows",
    "guard_dropped",
    "diarize_s",
    "speaker_windows",
)


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
    # The cuts this chunk was decoded around (None: the file's start or end, or a result
    # written before cuts existed, which falls back to the plan's nominal boundary).
    cut_start_s: float | None = None
    cut_end_s: float | None = None
    # What the guard took out of this chunk, times on the file's timeline too.
    dropped_segments: list[DroppedSegment] = Field(default_factory=list)


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


def shift_dropped(dropped: list[DroppedSegment], offset_s: float) -> list[DroppedSegment]:
    return [
        d.model_copy(update={"start": d.start + offset_s, "end": d.end + offset_s}) for d in dropped
    ]


def merge(plan: ChunkPlan, chunks: list[ChunkResult]) -> Transcript:
    indexes = sorted(c.index for c in chunks)
    if indexes != list(range(plan.chunk_count)):
        raise ValueError(f"merge needs chunks 0..{plan.chunk_count - 1}, got {indexes}")
    ordered = sorted(chunks, key=lambda c: c.index)
    cuts = [-math.inf, *(_start_cut(plan, c) for c in ordered[1:]), math.inf]
    segments: list[Segment] = []
    dropped: list[DroppedSegment] = []
    for chunk in ordered:
        low, high = cuts[chunk.index], cuts[chunk.index + 1]
        if chunk.cut_end_s is not None and chunk.cut_end_s != high:
            log.warning(
                "chunk %d ended at %.3f s, its neighbour began at %.3f s; using the latter",
                chunk.index,
                chunk.cut_end_s,
                high,
            )
        segments += within(chunk.segments, low, high)
        dropped += [d for d in chunk.dropped_segments if low <= (d.start + d.end) / 2 < high]
    language = _language(ordered)
    first = next(c for c in ordered if c.language == language)
    return Transcript(
        job_id=plan.job_id,
        language=language,
        language_probability=first.language_probability,
        duration_s=plan.duration_s,
        model=plan.model,
        task=plan.task.value,
        segments=segments,
        dropped_segments=dropped,
        options={
            **first.options,
            "chunk_seconds": plan.chunk_seconds,
            "chunk_overlap_s": plan.overlap_s,
            "chunk_count": plan.chunk_count,
            "chunk_cuts_s": [round(c, 3) for c in cuts[1:-1]],
            **_sums(ordered),
        },
    )


def _start_cut(plan: ChunkPlan, chunk: ChunkResult) -> float:
    return chunk.cut_start_s if chunk.cut_start_s is not None else plan.boundary(chunk.index)


def _sums(chunks: list[ChunkResult]) -> dict[str, float]:
    present = [k for k in _SUMMED if any(k in c.options for c in chunks)]
    return {k: round(sum(c.options.get(k, 0) for c in chunks), 3) for k in present}


def _language(chunks: list[ChunkResult]) -> str:
    """The language spoken longest (each chunk detects its own)."""
    spoken: dict[str, float] = {}
    for chunk in chunks:
        talk = sum(s.end - s.start for s in chunk.segments)
        spoken[chunk.language] = spoken.get(chunk.language, 0.0) + talk + 1e-9
    return max(spoken, key=lambda lang: spoken[lang])
