"""Two or more voices taking turns, with the reference turns: espeak-ng voices of different
gender and pitch (voices of one gender are one speaker to a speaker-embedding model), joined
by sox with a short pause between turns.
"""

from __future__ import annotations

import subprocess
import tempfile
import wave
from pathlib import Path

# Voices a speaker-embedding model tells apart: a low man's voice and a high woman's.
VOICES = {"A": ("en-us+m3", 35), "B": ("en-us+f2", 70)}
PAUSE_S = 0.3


def make_conversation(
    path: Path, turns: list[tuple[str, str]], *, voices: dict[str, tuple[str, int]] = VOICES
) -> list[tuple[float, float, str]]:
    """Write ``turns`` ((speaker, text) pairs) as one 16 kHz mono wav; returns the reference
    (start, end, speaker) of each turn."""
    reference: list[tuple[float, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        parts: list[str] = []
        at = 0.0
        for i, (speaker, text) in enumerate(turns):
            voice, pitch = voices[speaker]
            raw, part = Path(tmp) / f"{i}.raw.wav", Path(tmp) / f"{i}.wav"
            subprocess.run(
                ["espeak-ng", "-v", voice, "-p", str(pitch), "-w", str(raw), text], check=True
            )
            subprocess.run(
                ["sox", str(raw), "-r", "16000", "-c", "1", str(part), "pad", "0", str(PAUSE_S)],
                check=True,
            )
            with wave.open(str(part)) as w:
                seconds = w.getnframes() / w.getframerate()
            reference.append((at, at + seconds - PAUSE_S, speaker))
            at += seconds
            parts.append(str(part))
        subprocess.run(["sox", *parts, str(path)], check=True)
    return reference


def who_at(reference: list[tuple[float, float, str]], t: float) -> str | None:
    return next((s for a, b, s in reference if a <= t <= b), None)
