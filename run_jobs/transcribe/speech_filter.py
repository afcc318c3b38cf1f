"""Segments that are not speech, dropped the same way on every decoding path.

faster-whisper's sequential decoding skips a window whose no-speech probability is high and
whose average log-probability is low (Whisper's own rule); its batched pipeline does not, and
60 s of white noise came back as " you". Both paths pass their segments through here, so noise
ends like silence: no words, and no notes paid for (the job fails with empty_transcript).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from common.domain.transcripts import Segment

# Whisper's defaults (transcribe.py: no_speech_threshold, logprob_threshold).
NO_SPEECH_THRESHOLD = 0.6
LOGPROB_THRESHOLD = -1.0
_WORD = re.compile(r"\w")
# What Whisper says over noise, music and silence (it learnt them from subtitles): dropped
# when the decoder itself thought no one was speaking. On sox's white noise tiny.en says
# " You" at log-probability -0.97, just inside Whisper's own rule.
PHANTOMS = frozenset(
    {
        "you",
        "thank you",
        "thanks",
        "thanks for watching",
        "thank you for watching",
        "bye",
        "so",
        "okay",
        "subtitles by the amara org community",
    }
)


@dataclass(frozen=True)
class Dropped:
    start: float
    end: float
    text: str
    reason: str  # "no_speech" | "no_words" | "phantom"


def drop_non_speech(segments: list[Segment]) -> tuple[list[Segment], list[Dropped]]:
    kept: list[Segment] = []
    dropped: list[Dropped] = []
    for seg in segments:
        reason = _reason(seg)
        if reason is None:
            kept.append(seg)
        else:
            dropped.append(Dropped(seg.start, seg.end, seg.text, reason))
    return kept, dropped


def _reason(seg: Segment) -> str | None:
    if not _WORD.search(seg.text):
        return "no_words"  # punctuation only (" ." on noise): nothing was said
    if (
        seg.no_speech_prob is not None
        and seg.avg_logprob is not None
        and seg.no_speech_prob > NO_SPEECH_THRESHOLD
        and seg.avg_logprob < LOGPROB_THRESHOLD
    ):
        return "no_speech"
    if (
        seg.no_speech_prob is not None
        and seg.no_speech_prob > NO_SPEECH_THRESHOLD
        and " ".join(re.findall(r"\w+", seg.text.lower())) in PHANTOMS
    ):
        return "phantom"
    return None
