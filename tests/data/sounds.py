"""Sounds that are not speech, for the hallucination tests and ``bench/hallucination.py``."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

RATE = 16_000


def music(seconds: float) -> np.ndarray:
    """Plucked triads and their arpeggios (C, A minor, F, G), with overtones and decay."""
    chords = [
        (261.6, 329.6, 392.0),
        (220.0, 261.6, 329.6),
        (174.6, 220.0, 261.6),
        (196.0, 246.9, 293.7),
    ]
    note_s = 0.25
    t = np.arange(int(note_s * RATE)) / RATE
    envelope = np.exp(-6 * t)
    out: list[np.ndarray] = []
    while len(out) * note_s < seconds:
        chord = chords[(len(out) // 8) % len(chords)]
        step = len(out) % 8
        freqs = chord if step == 0 else (chord[step % 3] * (2 if step > 3 else 1),)
        tone = sum(np.sin(2 * np.pi * f * k * t) / k for f in freqs for k in (1, 2, 3))
        out.append(envelope * tone / (3 * len(freqs)))
    return (0.5 * np.concatenate(out)).astype(np.float32)


def write_wav(path: Path, samples: np.ndarray) -> Path:
    """16 kHz mono 16-bit PCM, as an upload would be."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm.tobytes())
    return path
