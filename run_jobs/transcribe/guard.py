"""The hallucination guard: the checks every segment passes, on every decoding path.

faster-whisper's sequential decoding retries a window at higher temperatures when its text is
too repetitive (gzip compression ratio > 2.4) or too unlikely (average log-probability < -1),
and skips it when the decoder also thought no one spoke; the batched pipeline does none of it,
and 60 s of white noise came back as " you". So each segment is checked here, by pure rules;
the Transcriber decodes a window holding a failing segment again, sequentially with those
fallbacks, and drops (and records) what still fails. Noise ends like silence: no words, and
no notes paid for (the job fails with empty_transcript).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

from common.domain.transcripts import DroppedSegment, Segment

# Whisper's defaults (faster_whisper/transcribe.py: compression_ratio_threshold,
# log_prob_threshold, no_speech_threshold).
COMPRESSION_RATIO_THRESHOLD = 2.4
LOGPROB_THRESHOLD = -1.0
NO_SPEECH_THRESHOLD = 0.6
# A loop: the same n-gram of 1..MAX_LOOP_N words said at least LOOP_REPEATS times in a row,
# LOOP_WORDS words in all ("no, no, no" is speech; "the the the the the the the the" is not).
MAX_LOOP_N = 4
LOOP_REPEATS = 4
LOOP_WORDS = 8
# A phrase Whisper learnt from subtitles is a phantom where VAD heard speech in less than
# this share of the segment's span.
LITTLE_SPEECH = 0.25
# What Whisper says over noise, music and silence. On sox's white noise tiny.en says " You" at
# log-probability -0.97, just inside Whisper's own rule.
PHANTOMS = frozenset(
    {
        "you",
        "thank you",
        "thanks",
        "thanks for watching",
        "thank you for watching",
        "thank you so much for watching",
        "please subscribe",
        "bye",
        "so",
        "okay",
        "subtitles by the amara org community",
        "transcription by castingwords",
    }
)

# Reasons, as recorded in transcript.json's dropped_segments.
NO_WORDS = "no_words"  # punctuation only (" ." on noise): nothing was said
NO_SPEECH = "no_speech"  # Whisper's rule: unlikely text where the decoder heard no speaker
PHANTOM = "phantom"  # a subtitle phrase over little speech
COMPRESSION = "compression_ratio"  # too repetitive to be speech
LOOP = "repetition_loop"
# The rules the Transcriber had before the guard (kept when the guard is off, for comparison).
NON_SPEECH = frozenset({NO_WORDS, NO_SPEECH, PHANTOM})

Spans = Sequence[tuple[float, float]]
_WORD = re.compile(r"\w+")


def compression_ratio(text: str) -> float:
    """Whisper's gzip compression ratio: UTF-8 bytes over zlib-compressed bytes."""
    raw = text.encode("utf-8")
    return len(raw) / len(zlib.compress(raw)) if raw else 0.0


def longest_loop(words: Sequence[str], max_n: int = MAX_LOOP_N) -> tuple[int, int]:
    """``(n, repeats)`` of the n-gram repeated most times in a row (the longer in words on a
    tie); ``(0, 0)`` for no words."""
    best = (0, 0)
    for n in range(1, max_n + 1):
        for start in range(len(words) - n + 1):
            gram, repeats = words[start : start + n], 1
            while words[start + repeats * n : start + (repeats + 1) * n] == gram:
                repeats += 1
            if (repeats, n * repeats) > (best[1], best[0] * best[1]):
                best = (n, repeats)
    return best


def has_loop(text: str) -> bool:
    n, repeats = longest_loop(_WORD.findall(text.lower()))
    return repeats >= LOOP_REPEATS and n * repeats >= LOOP_WORDS


def speech_within(speech: Spans, start: float, end: float) -> float:
    """Seconds of VAD speech inside ``[start, end]``."""
    return sum(max(0.0, min(b, end) - max(a, start)) for a, b in speech)


def verdict(seg: Segment, speech: Spans | None = None) -> str | None:
    """Why ``seg`` is not speech (one of the reasons above), or None to keep it. ``speech``:
    the VAD speech spans on the segment's timeline, None where no VAD ran."""
    words = _WORD.findall(seg.text.lower())
    if not words:
        return NO_WORDS
    unheard = seg.no_speech_prob is not None and seg.no_speech_prob > NO_SPEECH_THRESHOLD
    unlikely = seg.avg_logprob is not None and seg.avg_logprob < LOGPROB_THRESHOLD
    if unheard and unlikely:
        return NO_SPEECH
    if " ".join(words) in PHANTOMS and (unheard or _little_speech(seg, speech)):
        return PHANTOM
    # The decoder's ratio is its whole window's text: a loop may straddle segments.
    ratio = max(compression_ratio(seg.text.strip()), seg.compression_ratio or 0.0)
    if ratio > COMPRESSION_RATIO_THRESHOLD:
        return COMPRESSION
    if has_loop(seg.text):
        return LOOP
    return None


def failing(segments: Sequence[Segment], speech: Spans | None = None) -> list[Segment]:
    return [s for s in segments if verdict(s, speech) is not None]


def drop_failing(
    segments: Sequence[Segment],
    speech: Spans | None = None,
    reasons: frozenset[str] | None = None,
) -> tuple[list[Segment], list[DroppedSegment]]:
    """``segments`` split into those kept and those dropped (with why); ``reasons`` limits
    the rules applied (None: all)."""
    kept: list[Segment] = []
    dropped: list[DroppedSegment] = []
    for seg in segments:
        reason = verdict(seg, speech)
        if reason is None or (reasons is not None and reason not in reasons):
            kept.append(seg)
        else:
            dropped.append(
                DroppedSegment(start=seg.start, end=seg.end, text=seg.text, reason=reason)
            )
    return kept, dropped


def _little_speech(seg: Segment, speech: Spans | None) -> bool:
    if speech is None:
        return False
    # The words' span where there are words: a segment's own may take in the pause before.
    start, end = (seg.words[0].start, seg.words[-1].end) if seg.words else (seg.start, seg.end)
    return speech_within(speech, start, end) < LITTLE_SPEECH * max(end - start, 0.1)
