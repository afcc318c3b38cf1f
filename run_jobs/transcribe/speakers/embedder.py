"""Speech -> speaker embeddings: segmentation-3.0 finds the speech (and where two voices
overlap; ``segmentation.py``), the speech is cut into short windows, and CAM++ (on onnxruntime)
gives each window a 192-number voice print.

Kaldi fbank features (80 bins, 25 ms frames every 10 ms, as CAM++ was trained) are computed
once over the whole chunk, and each window takes its frames, mean-normalised, so overlapping
windows cost no extra feature work. The model is loaded once per process (``embedder_loads``
(``models.py``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import kaldi_native_fbank as knf
import numpy as np

from common.audio.decode import SAMPLE_RATE
from common.config.settings import Speakers
from run_jobs.transcribe.speakers import models, segmentation
from run_jobs.transcribe.speakers.bake import EMBEDDING_MODEL

FRAME_SHIFT_S = 0.01
FRAME_LENGTH_S = 0.025
BATCH = 16  # windows per model call: measured fastest per window on 2 cores, and memory stays small
MIN_SPEECH_S = 0.3  # shorter speech gives no usable voice print


@dataclass(frozen=True)
class SpeakerWindows:
    """What one chunk contributes to the file's diarization: its speech and the voice prints
    of its windows, times on the file's timeline. Stored beside the chunk's words, so the
    last task can cluster the whole file without decoding any audio again."""

    speech: np.ndarray  # (regions, 2) start, end in seconds
    starts: np.ndarray  # (windows,)
    ends: np.ndarray  # (windows,)
    embeddings: np.ndarray  # (windows, 192) float32, unit length
    overlap: np.ndarray  # (regions, 2): where two voices speak at once

    @classmethod
    def empty(cls) -> SpeakerWindows:
        return cls(
            np.zeros((0, 2)),
            np.zeros(0),
            np.zeros(0),
            np.zeros((0, 192), np.float32),
            np.zeros((0, 2)),
        )

    def to_bytes(self) -> bytes:
        out = io.BytesIO()
        np.savez_compressed(
            out,
            speech=self.speech,
            starts=self.starts,
            ends=self.ends,
            embeddings=self.embeddings.astype(np.float16),  # half the bytes; cosine unchanged
            overlap=self.overlap,
        )
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> SpeakerWindows:
        with np.load(io.BytesIO(data)) as z:
            return cls(
                z["speech"],
                z["starts"],
                z["ends"],
                z["embeddings"].astype(np.float32),
                z["overlap"],
            )

    @classmethod
    def joined(cls, parts: list[SpeakerWindows]) -> SpeakerWindows:
        if not parts:
            return cls.empty()
        return cls(
            np.concatenate([p.speech for p in parts]).reshape(-1, 2),
            np.concatenate([p.starts for p in parts]),
            np.concatenate([p.ends for p in parts]),
            np.concatenate([p.embeddings for p in parts]).reshape(-1, 192),
            np.concatenate([p.overlap for p in parts]).reshape(-1, 2),
        )


def windows_of(
    regions: list[tuple[float, float]],
    window_s: float,
    step_s: float,
    changes: np.ndarray | None = None,
) -> list[tuple[float, float]]:
    """Each region cut into windows of ``window_s``, the last one flush with the region's end
    (a region shorter than a window is one window). Windows are ``step_s`` apart near a
    possible change of speaker (``changes``; everywhere when None) and side by side where the
    segmentation heard one voice throughout: a voice print there says nothing new."""
    out = []
    for start, end in regions:
        if end - start <= window_s:
            out.append((start, end))
            continue
        at = start
        while at + window_s < end:
            out.append((at, at + window_s))
            near = changes is None or bool(
                np.any((changes > at - window_s) & (changes < at + 2 * window_s))
            )
            at += step_s if near else window_s
        out.append((end - window_s, end))
    return out


def embed_chunk(
    samples: np.ndarray,
    offset_s: float,
    owned: tuple[float, float],
    settings: Speakers,
) -> SpeakerWindows:
    """The speaker windows of the speech in ``samples`` (which start at ``offset_s`` on the
    file's timeline) whose middles lie in ``owned`` (this chunk's share, between its cuts)."""
    scores = segmentation.score(samples, settings)
    low, high = owned[0] - offset_s, owned[1] - offset_s

    def owned_part(regions: list[tuple[float, float]], shortest: float) -> np.ndarray:
        kept = [(max(a, low), min(b, high)) for a, b in regions if b > low and a < high]
        spans = [(a, b) for a, b in kept if b - a >= shortest]
        return np.asarray(spans, dtype=np.float64).reshape(-1, 2)

    regions = owned_part(scores.regions(scores.speech, settings.speech_threshold), MIN_SPEECH_S)
    overlap = owned_part(
        scores.regions(scores.overlap, settings.overlap_threshold), segmentation.MIN_REGION_S
    )
    windows = windows_of(
        [(a, b) for a, b in regions], settings.window_s, settings.step_s, scores.changes
    )
    if not windows:
        return SpeakerWindows.empty()
    features = fbank(samples)
    embeddings = embed(features, windows, settings)
    spans = np.asarray(windows, dtype=np.float64) + offset_s
    return SpeakerWindows(
        speech=regions + offset_s,
        starts=spans[:, 0],
        ends=spans[:, 1],
        embeddings=embeddings,
        overlap=overlap + offset_s,
    )


def fbank(samples: np.ndarray) -> np.ndarray:
    options = knf.FbankOptions()
    options.frame_opts.dither = 0.0  # deterministic: the same audio gives the same prints
    options.frame_opts.samp_freq = SAMPLE_RATE
    options.mel_opts.num_bins = 80
    computer = knf.OnlineFbank(options)
    computer.accept_waveform(SAMPLE_RATE, samples.astype(np.float32))
    computer.input_finished()
    count = computer.num_frames_ready
    if count == 0:
        return np.zeros((0, 80), np.float32)
    return np.stack([computer.get_frame(i) for i in range(count)]).astype(np.float32)


def embed(
    features: np.ndarray, windows: list[tuple[float, float]], settings: Speakers
) -> np.ndarray:
    """Unit-length embeddings of ``windows`` (seconds from the features' start), batched by
    length so that no window is padded with another's frames."""
    session = models.session(settings, EMBEDDING_MODEL)
    pieces: list[np.ndarray] = []
    for start, end in windows:
        first = round(start / FRAME_SHIFT_S)
        last = max(first + 1, round((end - FRAME_LENGTH_S) / FRAME_SHIFT_S) + 1)
        frames = features[first : min(last, len(features))]
        if len(frames) == 0:
            frames = features[-1:]
        pieces.append(frames - frames.mean(axis=0, keepdims=True))
    out = np.zeros((len(pieces), 192), np.float32)
    by_length: dict[int, list[int]] = {}
    for i, piece in enumerate(pieces):
        by_length.setdefault(len(piece), []).append(i)
    for indexes in by_length.values():
        for b in range(0, len(indexes), BATCH):
            batch = indexes[b : b + BATCH]
            x = np.stack([pieces[i] for i in batch])
            result: Any = session.run(None, {"features": x})[0]
            out[batch] = result
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.asarray(out / np.maximum(norms, 1e-8), dtype=np.float32)
