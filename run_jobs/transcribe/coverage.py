"""≤30 s decoding windows of VAD speech, and the check that the words cover their speech.

``BatchedInferencePipeline`` decodes each window once, without faster-whisper's fallbacks
(no temperature retry, no compression or log-prob checks), and now and then it stops early
and drops several sentences of a window; sequential decoding skips a sentence now and then
too. We build the windows ourselves (VAD speech merged into spans of at most 30 s on the
original timeline, as WhisperX does), so each window's speech is known; a window whose
speech the words leave largely uncovered is decoded again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from common.audio.decode import SAMPLE_RATE
from common.domain.transcripts import Segment

WINDOW_S = 30.0  # Whisper's input length
# The pipeline's own VAD settings for batching (faster-whisper 1.2: split speech at 30 s,
# a pause of 160 ms ends a span).
MIN_SILENCE_MS = 160
# Each word is taken to cover this much either side (the gaps between words of one breath).
WORD_SLACK_S = 0.5
# A window with at least MIN_SPEECH_S of speech is decoded again when its words cover less
# than MIN_COVERAGE of that speech, or leave MAX_GAP_S of it in one stretch without a word.
MIN_SPEECH_S = 2.0
MIN_COVERAGE = 0.6
MAX_GAP_S = 5.0
# A word stretched over more speech than this hides a skip: sequential decoding that leaves
# out a sentence aligns the next word across it. Such a word covers only this much, and the
# window is decoded again. (Spoken numbers, "one hundred and forty-three", take ~1.5 s.)
MAX_WORD_S = 2.5


@dataclass(frozen=True)
class DecodeWindow:
    start: float  # seconds from the start of the samples
    end: float
    speech: tuple[tuple[float, float], ...]  # VAD speech spans inside it

    @property
    def speech_s(self) -> float:
        return _length(list(self.speech))


@dataclass(frozen=True)
class Coverage:
    speech_s: float
    covered_s: float
    longest_gap_s: float  # the longest stretch of speech with no word
    stretched: int = 0  # words spread over more than MAX_WORD_S of speech

    @property
    def dropped(self) -> bool:
        if self.speech_s < MIN_SPEECH_S:
            return False
        low = self.covered_s < MIN_COVERAGE * self.speech_s
        return low or self.longest_gap_s >= MAX_GAP_S or self.stretched > 0


def vad_options() -> Any:
    from faster_whisper.vad import VadOptions

    return VadOptions(max_speech_duration_s=WINDOW_S, min_silence_duration_ms=MIN_SILENCE_MS)


def speech_spans(samples: np.ndarray) -> list[tuple[float, float]]:
    """VAD speech in seconds, each span at most ``WINDOW_S`` long."""
    from faster_whisper.vad import get_speech_timestamps

    spans = get_speech_timestamps(samples, vad_options(), sampling_rate=SAMPLE_RATE)
    return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in spans]


def group_windows(spans: list[tuple[float, float]], max_s: float = WINDOW_S) -> list[DecodeWindow]:
    """Consecutive speech spans merged while the window stays within ``max_s``."""
    windows: list[DecodeWindow] = []
    current: list[tuple[float, float]] = []
    for span in spans:
        if current and span[1] - current[0][0] > max_s:
            windows.append(_window(current))
            current = []
        current.append(span)
    if current:
        windows.append(_window(current))
    return windows


def coverage(window: DecodeWindow, segments: list[Segment]) -> Coverage:
    """How much of ``window``'s speech the words of ``segments`` (any of them: a segment may
    cross windows) cover; segment spans stand in for words where there are none."""
    spans = [(w.start, w.end) for s in segments for w in s.words]
    timed = bool(spans)  # real word times, not segment spans standing in for them
    spans = spans or [(s.start, s.end) for s in segments if s.text.strip()]
    low, high = window.start - WORD_SLACK_S, window.end + WORD_SLACK_S
    words = [(a, b) for a, b in spans if b > low and a < high]
    speech = list(window.speech)
    stretched = 0
    if timed:
        stretched = sum(_length(_clip(speech, a, b)) > MAX_WORD_S for a, b in words)
        words = [(a, min(b, a + MAX_WORD_S)) for a, b in words]
    covered = _union([(a - WORD_SLACK_S, b + WORD_SLACK_S) for a, b in words])
    # The stretches between words, with the speech each holds (pauses between sentences split
    # VAD spans, so a run of lost sentences spans several of them).
    edges = [window.start, *(t for a, b in covered for t in (a, b)), window.end]
    missed = [
        _length(_clip(speech, edges[i], edges[i + 1]))
        for i in range(0, len(edges), 2)
        if edges[i + 1] > edges[i]
    ]
    return Coverage(
        speech_s=window.speech_s,
        covered_s=max(window.speech_s - sum(missed), 0.0),
        longest_gap_s=max(missed, default=0.0),
        stretched=stretched,
    )


def replace(segments: list[Segment], window: DecodeWindow, fresh: list[Segment]) -> list[Segment]:
    """``segments`` with the words inside ``window`` swapped for ``fresh``, in time order."""
    kept = within(segments, -math.inf, window.start) + within(segments, window.end, math.inf)
    return sorted(kept + fresh, key=lambda s: s.start)


def within(segments: list[Segment], start: float, end: float) -> list[Segment]:
    """The segments (and words) whose middles lie in ``[start, end)``."""
    out = []
    for seg in segments:
        if not seg.words:
            if start <= (seg.start + seg.end) / 2 < end:
                out.append(seg)
            continue
        words = [w for w in seg.words if start <= (w.start + w.end) / 2 < end]
        if len(words) == len(seg.words):
            out.append(seg)
        elif words:
            text = "".join(w.word for w in words)
            update = {"start": words[0].start, "end": words[-1].end, "text": text}
            out.append(seg.model_copy(update={**update, "words": words}))
    return out


def _window(spans: list[tuple[float, float]]) -> DecodeWindow:
    return DecodeWindow(start=spans[0][0], end=spans[-1][1], speech=tuple(spans))


def _length(intervals: list[tuple[float, float]]) -> float:
    return sum(b - a for a, b in intervals)


def _union(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _clip(intervals: list[tuple[float, float]], a: float, b: float) -> list[tuple[float, float]]:
    return [(max(x, a), min(y, b)) for x, y in intervals if y > a and x < b]
