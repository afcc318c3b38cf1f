"""Where there is speech, and where two people speak at once: pyannote's segmentation-3.0 (on
onnxruntime), slid over the audio 10 s at a time.

The model answers, every 17 ms of a 10 s window, how likely each set of at most two of three
local speakers is to be talking (its "powerset" classes: nobody, one of three, one of three
pairs). Summing those gives, per frame, the probability of speech and of overlapped speech;
windows overlap, and each frame's probabilities are the mean over the windows that saw it.
Trained on meetings, it hears far-field speech that Silero (tuned for close talk) misses.
Where a window's most likely set of speakers changes from one voice to another (not through
silence), the speaker may change: ``changes`` lists those moments, where the embedder looks
closer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.audio.decode import SAMPLE_RATE
from common.config.settings import Speakers
from run_jobs.transcribe.speakers import models
from run_jobs.transcribe.speakers.bake import SEGMENTATION_MODEL, manifest

WINDOW_S = 10.0
BATCH = 8
# Powerset classes of segmentation-3.0 (3 speakers, at most 2 at once), in its order.
_SILENCE = 0
_PAIRS = slice(4, 7)
MIN_REGION_S = 0.1  # shorter speech or overlap is noise in the scores
MAX_GAP_S = 0.1  # shorter pauses inside speech are kept as speech


@dataclass(frozen=True)
class Scores:
    """Per frame of ``step_s`` from ``start_s``: probability of speech and of overlap."""

    start_s: float
    step_s: float
    speech: np.ndarray
    overlap: np.ndarray
    changes: np.ndarray  # seconds, sorted

    def regions(self, which: np.ndarray, threshold: float) -> list[tuple[float, float]]:
        active = np.concatenate([[False], which > threshold, [False]])
        edges = np.flatnonzero(np.diff(active.astype(np.int8)))
        spans = [
            (self.start_s + a * self.step_s, self.start_s + b * self.step_s)
            for a, b in zip(edges[::2], edges[1::2], strict=True)
        ]
        merged: list[tuple[float, float]] = []
        for a, b in spans:
            if merged and a - merged[-1][1] <= MAX_GAP_S:
                merged[-1] = (merged[-1][0], b)
            else:
                merged.append((a, b))
        return [(round(a, 3), round(b, 3)) for a, b in merged if b - a >= MIN_REGION_S]


def score(samples: np.ndarray, settings: Speakers) -> Scores:
    """Speech and overlap probabilities over all of ``samples``."""
    session = models.session(settings, SEGMENTATION_MODEL)
    frame_step = manifest(models.model_dir(settings)).segmentation.frame_step_s
    window = int(WINDOW_S * SAMPLE_RATE)
    hop = int(settings.segmentation_step_s * SAMPLE_RATE)
    total = len(samples)
    starts = list(range(0, max(total - window, 0) + 1, hop))
    if starts[-1] + window < total:
        starts.append(total - window)  # the tail, flush with the end
    padded = np.pad(samples.astype(np.float32), (0, max(0, window - total)))
    frames = int(np.ceil(max(total, window) / SAMPLE_RATE / frame_step)) + 1
    speech, overlap, seen = np.zeros(frames), np.zeros(frames), np.zeros(frames)
    changes: list[np.ndarray] = []
    for b in range(0, len(starts), BATCH):
        batch = starts[b : b + BATCH]
        x = np.stack([padded[s : s + window] for s in batch])[:, None, :]
        probs = np.exp(session.run(None, {"waveforms": x})[0])
        for s, p in zip(batch, probs, strict=True):
            first = round(s / SAMPLE_RATE / frame_step)
            n = min(len(p), frames - first)
            speech[first : first + n] += 1.0 - p[:n, _SILENCE]
            overlap[first : first + n] += p[:n, _PAIRS].sum(axis=1)
            seen[first : first + n] += 1
            changes.append(s / SAMPLE_RATE + _changes(p) * frame_step)
    seen = np.maximum(seen, 1)
    found = np.unique(np.round(np.concatenate(changes), 2)) if changes else np.zeros(0)
    return Scores(0.0, frame_step, speech / seen, overlap / seen, found)


def _changes(probs: np.ndarray) -> np.ndarray:
    """Frames of one window where its likeliest set of voices differs from the last set
    heard (silence between does not count as a change)."""
    best = probs.argmax(axis=1)
    voiced = np.flatnonzero(best != _SILENCE)
    if len(voiced) < 2:
        return np.zeros(0, dtype=int)
    sets = best[voiced]
    return np.asarray(voiced[1:][sets[1:] != sets[:-1]])
