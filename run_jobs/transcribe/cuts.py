"""Where neighbouring chunks meet: a cut in silence near each nominal boundary, found by VAD.

A window that starts mid-utterance loses its first seconds (Whisper needs the start of a
sentence), and no small overlap makes up for it. So a chunk boundary moves to a pause: each
task decodes ``plan.cut_region(k)`` for the boundaries it touches, runs Silero VAD over it and
picks the cut with ``pick_cut``, a pure function of the probabilities. Task ``k - 1`` and task
``k`` decode the same seconds of the same bytes with the same call, so they get the same
samples, the same probabilities and the same cut, without talking to each other.
"""

from __future__ import annotations

import numpy as np

from common.audio.decode import SAMPLE_RATE, Source, decode_window
from common.domain.transcription_plan import ChunkPlan

FRAME = 512  # samples per Silero VAD frame at 16 kHz
FRAME_S = FRAME / SAMPLE_RATE
# A frame below this speech probability is silence (faster-whisper's neg_threshold for 0.5).
SILENCE_PROB = 0.35
# Pauses are tried longest class first: a sentence break, a phrase break, a breath. Within a
# class the one nearest the nominal boundary wins; moving a cut costs nothing but chunk length.
PAUSE_CLASSES_S = (1.0, 0.5, 0.2)
# Without any pause, the quietest stretch of this many frames (~0.26 s) takes the cut.
SMOOTH_FRAMES = 8


def speech_probabilities(samples: np.ndarray) -> np.ndarray:
    """Silero's speech probability for each ``FRAME`` of ``samples`` (the last one padded)."""
    from faster_whisper.vad import get_vad_model

    if len(samples) == 0:
        return np.zeros(0, dtype=np.float32)
    padded = np.pad(samples.astype(np.float32), (0, (-len(samples)) % FRAME))
    return np.asarray(get_vad_model()(padded), dtype=np.float32).reshape(-1)


def pick_cut(probs: np.ndarray, *, region_start_s: float, nominal_s: float) -> float:
    """The cut for a region whose frame ``i`` starts at ``region_start_s + i * FRAME_S``: the
    middle of the nearest pause of the longest class present, else the quietest spot nearest
    ``nominal_s``. Ties go to the earlier frame, so the answer depends only on ``probs``."""
    if len(probs) == 0:
        return nominal_s
    target = (nominal_s - region_start_s) / FRAME_S
    runs = _silent_runs(probs < SILENCE_PROB)
    for shortest in PAUSE_CLASSES_S:
        pauses = [(a, b) for a, b in runs if (b - a) * FRAME_S >= shortest]
        if pauses:
            a, b = min(pauses, key=lambda r: (abs((r[0] + r[1]) / 2 - target), r[0]))
            return region_start_s + (a + b) / 2 * FRAME_S
    width = min(SMOOTH_FRAMES, len(probs))
    padded = np.pad(probs.astype(np.float64), (width // 2, (width - 1) // 2), mode="edge")
    smooth = np.convolve(padded, np.ones(width) / width, mode="valid")  # edges not quieter
    distance = np.abs(np.arange(len(probs)) - target)
    best = int(np.lexsort((distance, np.round(smooth, 6)))[0])  # quietest, then nearest
    return region_start_s + (best + 0.5) * FRAME_S


def find_cut(source: Source, plan: ChunkPlan, k: int) -> float:
    """The cut between chunks ``k - 1`` and ``k`` (seconds on the file's timeline)."""
    nominal = plan.boundary(k)
    if plan.cut_search_s <= 0:
        return nominal
    start, end = plan.cut_region(k)
    if end <= start:
        return nominal
    probs = speech_probabilities(decode_window(source, start, end))
    return pick_cut(probs, region_start_s=start, nominal_s=nominal)


def task_cuts(source: Source, plan: ChunkPlan, index: int) -> tuple[float | None, float | None]:
    """Chunk ``index``'s start and end cuts (None at the file's start and end)."""
    start = find_cut(source, plan, index) if index > 0 else None
    end = find_cut(source, plan, index + 1) if index < plan.chunk_count - 1 else None
    return start, end


def _silent_runs(silent: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` frame ranges where ``silent`` holds."""
    edges = np.diff(np.concatenate(([0], silent.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]
