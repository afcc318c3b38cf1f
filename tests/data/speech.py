"""Speech with a known text, made by espeak-ng, and the word error rate against that text.

Used by the transcription tests and ``bench/transcribe.py``. espeak-ng is deterministic for a
given version and voice, so the same text gives the same audio on a machine.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

# Plain words and numbers spelled out, so normalisation never has to guess.
KNOWN_TEXT = (
    "The committee met on Tuesday morning to review the budget for the coming year. "
    "Everyone agreed that the new library should open in the spring. "
    "The treasurer explained that the costs for heating and lighting had risen sharply, "
    "so the group decided to delay the purchase of new computers until the autumn. "
    "Several members asked for a clear plan to repair the roof before the winter storms. "
    "The chair thanked the volunteers who painted the hall and cleaned the garden. "
    "Next month the council will vote on the proposal to extend the opening hours."
)


# Parts of made-up sentences ("who did what where when why"), '|'-separated, for speech that
# never repeats itself (bench/longform.py, bench/speakers/build_set.py).
SENTENCE_PARTS = {
    "who": "the treasurer|our neighbour|a young engineer|the old captain|my sister|the council"
    "|every teacher|the night nurse|a quiet farmer|the new manager",
    "did": "repaired|painted|carried|described|ordered|forgot|delivered|cleaned|measured|sold",
    "what": "the wooden bridge|a blue bicycle|the kitchen table|forty paper lanterns"
    "|the broken window|a heavy suitcase|the garden fence|seven loaves of bread",
    "where": "near the harbour|behind the station|in the library|on the hill|at the market"
    "|by the river|under the old oak tree|in the village hall",
    "when": "before the storm|last winter|on a Sunday morning|after the meeting"
    "|during the festival|late in the evening",
    "why": "because the roof was leaking|so the children could play outside"
    "|while everyone was watching|although nobody had asked|since the road was closed",
}


def make_speech(path: Path, text: str = KNOWN_TEXT, *, speed_wpm: int = 160) -> Path:
    """Write espeak-ng's reading of ``text`` to ``path`` (wav), converted by sox when the
    suffix asks for another format (flac, ogg, mp3 where sox supports it)."""
    wav = path if path.suffix == ".wav" else path.with_suffix(".src.wav")
    subprocess.run(["espeak-ng", "-s", str(speed_wpm), "-w", str(wav), text], check=True)
    if wav != path:
        subprocess.run(["sox", str(wav), str(path)], check=True)
        wav.unlink()
    return path


def repeated(times: int) -> str:
    return " ".join([KNOWN_TEXT] * times)


def normalise(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, by edit distance."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1] / max(len(ref), 1)
