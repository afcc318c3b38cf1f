"""The subtitle renderer (common/domain/subtitles.py): cues from word times that fit the
options, never a split word, whisper's TSV, and the highlighted-word states."""

from __future__ import annotations

import itertools
import re

import pytest
from pydantic import ValidationError

from common.domain.subtitles import (
    SubtitleOptions,
    cues,
    render,
    to_srt,
    to_tsv,
    to_txt,
    to_vtt,
)
from common.domain.transcripts import Segment, Transcript
from tests.conftest import REPO_ROOT
from tests.fakes import make_segment

CLOCK = r"\d\d:\d\d:\d\d[,.]\d\d\d"


def _transcript(*segments: Segment) -> Transcript:
    end = max((s.end for s in segments), default=0.0)
    return Transcript(
        job_id="j", language="en", duration_s=end, model="tiny.en", segments=list(segments)
    )


def _spoken(text: str, start: float = 0.0, per_word: float = 0.3) -> Segment:
    """Words said one after another, ``per_word`` seconds each, no pause."""
    words = [
        (start + n * per_word, start + (n + 1) * per_word, f" {w}")
        for n, w in enumerate(text.split())
    ]
    return make_segment(*words)


def _meeting() -> Transcript:
    return Transcript.model_validate_json(
        (REPO_ROOT / "tests/data/meeting_transcript.json").read_text()
    )


def _blocks(srt: str) -> list[tuple[float, float, list[str]]]:
    """(start, end, text lines) of each SubRip cue."""
    found = []
    for block in srt.strip().split("\n\n"):
        number, times, *lines = block.split("\n")
        assert number.isdigit() and re.fullmatch(f"{CLOCK} --> {CLOCK}", times), block
        start, end = (_seconds(t) for t in times.split(" --> "))
        found.append((start, end, lines))
    return found


def _seconds(clock: str) -> float:
    h, m, s = clock.replace(",", ".").split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def _words(transcript: Transcript) -> list[str]:
    return " ".join(s.text for s in transcript.segments).split()


OPTIONS = [
    SubtitleOptions(),
    SubtitleOptions(max_line_chars=20, max_lines=1),
    SubtitleOptions(max_line_chars=10, max_lines=4, max_cue_s=3),
    SubtitleOptions(max_line_chars=32, max_lines=2, max_cue_s=1, min_gap_s=0.5),
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: f"{o.max_line_chars}x{o.max_lines}")
def test_cues_fit_the_options_and_keep_every_word_whole_and_in_order(
    options: SubtitleOptions,
) -> None:
    transcript = _meeting()
    blocks = _blocks(to_srt(transcript, options))

    words = [w for _, _, lines in blocks for line in lines for w in line.split()]
    assert words == _words(transcript)  # none split, lost or reordered
    for start, end, lines in blocks:
        assert 1 <= len(lines) <= options.max_lines
        for line in lines:
            assert len(line) <= options.max_line_chars or " " not in line, line
        assert 0 < end - start <= options.max_cue_s + 1e-9
    for (_, end, _), (start, _, _) in itertools.pairwise(blocks):
        assert start - end >= options.min_gap_s - 1e-9


def test_default_cues_end_at_sentences_when_they_can() -> None:
    transcript = _transcript(
        _spoken(
            "The release is on Tuesday. "
            "Maria wrote the notes and David read them before the meeting."
        ),
    )
    blocks = _blocks(to_srt(transcript))
    assert [lines for _, _, lines in blocks] == [
        ["The release is on Tuesday."],
        ["Maria wrote the notes and David", "read them before the meeting."],
    ]


def test_a_cue_breaks_at_a_comma_or_a_pause_rather_than_anywhere() -> None:
    options = SubtitleOptions(max_line_chars=30, max_lines=1)
    comma = _transcript(_spoken("First we ship it, then we write the long report"))
    assert next(lines for _, _, lines in _blocks(to_srt(comma, options))) == ["First we ship it,"]
    words = [(0.0, 0.3, " First"), (0.3, 0.6, " we"), (0.6, 0.9, " ship"), (1.6, 1.9, " it")]
    words += [(1.9 + n * 0.3, 2.2 + n * 0.3, f" w{n}") for n in range(8)]
    paused = _transcript(make_segment(*words))
    assert _blocks(to_srt(paused, options))[0][2] == ["First we ship"]


def test_lines_are_evened_out() -> None:
    transcript = _transcript(_spoken("one two three four five six seven eight nine ten eleven"))
    (_, _, lines), *_ = _blocks(to_srt(transcript, SubtitleOptions(max_line_chars=42)))
    assert lines == ["one two three four five six", "seven eight nine ten eleven"]


def test_a_word_longer_than_a_line_stands_alone_on_its_line() -> None:
    long = "Donaudampfschifffahrtsgesellschaftskapitän"
    transcript = _transcript(_spoken(f"the {long} is here"))
    options = SubtitleOptions(max_line_chars=10, max_lines=2)
    lines = [line for _, _, ls in _blocks(to_srt(transcript, options)) for line in ls]
    assert long in lines
    assert all(len(line) <= 10 for line in lines if line != long)


def test_a_cue_lasts_at_most_max_cue_s_even_for_one_long_word() -> None:
    transcript = _transcript(make_segment((1.0, 20.0, " Hmm."), (20.0, 20.5, " Yes.")))
    blocks = _blocks(to_srt(transcript, SubtitleOptions(max_cue_s=5)))
    assert [(start, end) for start, end, _ in blocks] == [(1.0, 6.0), (20.0, 20.5)]


def test_no_cue_spans_a_long_silence() -> None:
    transcript = _transcript(make_segment((0.0, 0.4, " Hello"), (5.0, 5.4, " again")))
    assert [lines for _, _, lines in _blocks(to_srt(transcript))] == [["Hello"], ["again"]]


def test_cues_keep_the_gap_and_never_overlap() -> None:
    # Whisper's word times may touch or overlap; long enough cues end earlier for the gap.
    first = _spoken("one two three four five six seven.", per_word=0.5)
    second = make_segment((3.45, 3.8, " Next"), (3.8, 4.0, " one."))
    found = cues(_transcript(first, second), SubtitleOptions(max_line_chars=40, max_lines=1))
    assert [c.start for c in found] == [0.0, 3.45]
    assert found[0].end == pytest.approx(3.35)
    crowded = make_segment((0.0, 0.05, " a."), (0.05, 0.1, " b."), (0.1, 0.15, " c."))
    tight = cues(_transcript(crowded), SubtitleOptions(max_line_chars=10, max_lines=1))
    for before, after in itertools.pairwise(tight):
        assert before.start < before.end < after.start
        assert after.start - before.end >= 0.1 - 1e-9


def test_words_run_on_across_segments_and_pieces_join_their_word() -> None:
    # Whisper cut the sentence into two segments and "2.4" into " 2" and ".4".
    one = make_segment((0.0, 0.3, " We"), (0.3, 0.6, " ship"), (0.6, 0.8, " version"))
    two = make_segment((0.8, 1.0, " 2"), (1.0, 1.2, ".4"), (1.2, 1.5, " today."))
    blocks = _blocks(to_srt(_transcript(one, two)))
    assert blocks == [(0.0, 1.5, ["We ship version 2.4 today."])]


def test_a_segment_without_words_is_spread_over_its_span() -> None:
    plain = Segment(start=10.0, end=14.0, text=" aaa bbb ccc ddd")
    blocks = _blocks(to_srt(_transcript(plain), SubtitleOptions(max_line_chars=10, max_lines=1)))
    assert [lines for _, _, lines in blocks] == [["aaa bbb"], ["ccc ddd"]]
    assert blocks[0][0] == 10.0 and blocks[-1][1] == 14.0


def test_an_empty_transcript_renders_empty_files() -> None:
    empty = _transcript(Segment(start=0, end=1, text="  "))
    assert to_srt(empty) == ""
    assert to_vtt(empty) == "WEBVTT\n\n"
    assert to_txt(empty) == ""
    assert to_tsv(empty) == "start\tend\ttext\n"
    assert to_srt(_transcript()) == ""


def test_highlighted_words_are_one_state_per_word_underlined_on_the_plain_lines() -> None:
    transcript = _transcript(
        make_segment((0.5, 1.0, " Hello"), (1.2, 1.6, " big"), (1.6, 2.0, " world."))
    )
    vtt = to_vtt(transcript, SubtitleOptions(highlight_words=True, max_line_chars=10))
    assert vtt == (
        "WEBVTT\n\n"
        "00:00:00.500 --> 00:00:01.200\n<u>Hello</u> big\nworld.\n\n"
        "00:00:01.200 --> 00:00:01.600\nHello <u>big</u>\nworld.\n\n"
        "00:00:01.600 --> 00:00:02.000\nHello big\n<u>world.</u>\n"
    )
    srt = to_srt(transcript, SubtitleOptions(highlight_words=True))
    assert srt.startswith("1\n00:00:00,500 --> 00:00:01,200\n<u>Hello</u> big world.\n\n2\n")


def test_tsv_is_whispers_segments_in_integer_milliseconds() -> None:
    transcript = _transcript(
        make_segment((0.0, 1.5, " Hello"), (1.5, 2.0004, " there.")),
        Segment(start=61.25, end=62.5, text=" Tab\there\nand there."),
    )
    assert to_tsv(transcript) == (
        "start\tend\ttext\n0\t2000\tHello there.\n61250\t62500\tTab here and there.\n"
    )
    assert render(transcript, "tsv") == to_tsv(transcript)


@pytest.mark.parametrize(
    "bad",
    [
        {"max_line_chars": 9},
        {"max_line_chars": 201},
        {"max_lines": 0},
        {"max_lines": 5},
        {"max_cue_s": 0.5},
        {"max_cue_s": 31},
        {"min_gap_s": -0.1},
        {"min_gap_s": 2.5},
        {"max_chars": 20},
    ],
)
def test_options_out_of_bounds_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SubtitleOptions.model_validate(bad)


def test_webvtt_text_is_escaped_and_subrip_text_is_not() -> None:
    transcript = _transcript(make_segment((0.0, 0.5, " R&D"), (0.5, 1.0, " <3")))
    assert to_vtt(transcript).endswith("\nR&amp;D &lt;3\n")
    assert to_srt(transcript).endswith("\nR&D <3\n")
    marked = to_vtt(transcript, SubtitleOptions(highlight_words=True))
    assert "\n<u>R&amp;D</u> &lt;3\n" in marked
