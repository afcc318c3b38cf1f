"""Batched decoding windows and the dropped-speech detector (run_jobs/transcribe/coverage.py)."""

from __future__ import annotations

import pytest

from common.domain.transcripts import Segment, Word
from run_jobs.transcribe.coverage import DecodeWindow, coverage, group_windows, replace


def _words(*spans: tuple[float, float]) -> Segment:
    words = [Word(start=a, end=b, word=" w") for a, b in spans]
    return Segment(start=spans[0][0], end=spans[-1][1], text=" w" * len(spans), words=words)


def _every(start: float, end: float, step: float = 0.4) -> list[tuple[float, float]]:
    out, t = [], start
    while t + 0.3 <= end:
        out.append((t, t + 0.3))
        t += step
    return out


def test_speech_spans_are_grouped_into_windows_of_at_most_30_s() -> None:
    spans = [(0.5, 8.0), (8.6, 20.0), (20.9, 29.0), (29.5, 31.0), (40.0, 55.0), (56.0, 75.0)]
    windows = group_windows(spans)
    assert [(w.start, w.end) for w in windows] == [(0.5, 29.0), (29.5, 55.0), (56.0, 75.0)]
    assert windows[0].speech_s == pytest.approx(7.5 + 11.4 + 8.1)
    assert group_windows([]) == []


def test_a_window_whose_words_cover_its_speech_is_kept() -> None:
    window = DecodeWindow(start=0.0, end=28.0, speech=((0.0, 12.0), (13.0, 28.0)))
    found = coverage(window, [_words(*_every(0.1, 12.0)), _words(*_every(13.1, 28.0))])
    assert not found.dropped
    assert found.covered_s > 0.95 * window.speech_s and found.longest_gap_s < 1.0


def test_a_window_missing_sentences_is_flagged() -> None:
    """Several sentences (~12 s of speech, across a pause) came back without a word."""
    window = DecodeWindow(start=0.0, end=28.0, speech=((0.0, 12.0), (13.0, 28.0)))
    found = coverage(window, [_words(*_every(0.1, 7.0)), _words(*_every(21.0, 28.0))])
    assert found.dropped
    assert found.longest_gap_s == pytest.approx(4.6 + 7.5, abs=0.2)
    # A single missing sentence of 6 s, with 80% covered, is flagged by the gap alone.
    found = coverage(window, [_words(*_every(0.1, 12.0)), _words(*_every(19.0, 28.0))])
    assert found.covered_s > 0.7 * window.speech_s and found.dropped


def test_a_word_stretched_over_a_skipped_sentence_is_flagged() -> None:
    """Sequential decoding left out a 3.5 s sentence and aligned the next word across it."""
    window = DecodeWindow(start=0.0, end=28.0, speech=((0.0, 28.0),))
    found = coverage(window, [_words(*_every(0.1, 10.0), (10.0, 14.4), *_every(14.5, 28.0))])
    assert found.stretched == 1 and found.dropped
    assert found.longest_gap_s == pytest.approx(1.0)  # the stretched word covers 2.5 s only
    # Spoken numbers are long words, but not that long.
    found = coverage(window, [_words(*_every(0.1, 10.0), (10.0, 11.6), *_every(11.7, 28.0))])
    assert found.stretched == 0 and not found.dropped


def test_little_speech_or_no_words_at_all() -> None:
    short = DecodeWindow(start=3.0, end=4.5, speech=((3.0, 4.5),))
    assert not coverage(short, []).dropped  # a cough, not a sentence
    empty = DecodeWindow(start=0.0, end=20.0, speech=((0.0, 20.0),))
    assert coverage(empty, []).dropped and coverage(empty, []).covered_s == 0.0
    # Without word timestamps the segments' spans stand in for words.
    text_only = Segment(start=0.0, end=19.5, text=" a whole window of text")
    assert not coverage(empty, [text_only]).dropped


def test_a_segment_crossing_windows_counts_for_both() -> None:
    """Sequential decoding's segments need not follow our windows."""
    first, second = group_windows([(0.0, 20.0), (20.5, 45.0)])
    across = _words(*_every(0.1, 45.0))
    assert not coverage(first, [across]).dropped and not coverage(second, [across]).dropped


def test_replace_swaps_only_the_words_inside_the_window() -> None:
    window = DecodeWindow(start=10.0, end=20.0, speech=((10.0, 20.0),))
    old = [_words((1.0, 2.0), (9.0, 9.5), (12.0, 12.5)), _words((19.0, 19.4), (21.0, 22.0))]
    fresh = [_words((11.0, 11.5), (13.0, 13.5), (15.0, 16.0))]
    out = replace(old, window, fresh)
    assert [(w.start, w.end) for s in out for w in s.words] == [
        (1.0, 2.0),
        (9.0, 9.5),
        (11.0, 11.5),
        (13.0, 13.5),
        (15.0, 16.0),
        (21.0, 22.0),
    ]
