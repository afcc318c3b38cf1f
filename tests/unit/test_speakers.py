"""The speakers option, turns -> words, and the renderings by speaker (pure domain code)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from common.domain.errors import InvalidInput
from common.domain.jobs import JobOptions, NotesTemplate
from common.domain.speakers import (
    BadSpeakers,
    SpeakerSpec,
    Turn,
    check_names,
    relabel_by_first_turn,
    renamed,
    speaker_at,
    talk_time,
)
from common.domain.subtitles import SubtitleOptions, render, to_srt, to_txt, to_vtt
from common.domain.transcription_plan import ChunkPlan
from common.domain.transcripts import Segment, Transcript, Word, with_speakers


@pytest.mark.parametrize(
    ("value", "stored", "bounds"),
    [
        ("auto", "auto", (1, 20)),
        (" AUTO ", "auto", (1, 20)),
        ("3", "3", (3, 3)),
        (3, "3", (3, 3)),
        ("2-5", "2-5", (2, 5)),
        ("1-20", "auto", (1, 20)),
    ],
)
def test_the_speakers_option_is_parsed_and_stored_in_one_form(
    value: str | int, stored: str, bounds: tuple[int, int]
) -> None:
    spec = SpeakerSpec.parse(value)
    assert str(spec) == stored and spec.enabled
    assert (spec.min_speakers, spec.max_speakers) == bounds
    assert JobOptions(speakers=value).speakers == stored  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["0", "21", "5-2", "two", "2-", "-3", "2..5", "", "1-21"])
def test_bad_speakers_values_are_refused_with_their_code(value: str) -> None:
    with pytest.raises(BadSpeakers) as caught:
        SpeakerSpec.parse(value)
    assert caught.value.code == "bad_speakers"
    with pytest.raises(ValidationError) as invalid:
        JobOptions(speakers=value)
    assert invalid.value.errors()[0]["type"] in ("bad_speakers", "string_pattern_mismatch")


def test_templates_decide_the_default() -> None:
    assert JobOptions().speaker_spec.enabled  # meeting
    assert JobOptions(notes_template=NotesTemplate.INTERVIEW).speaker_spec.enabled
    assert not JobOptions(notes_template=NotesTemplate.DIARY).speaker_spec.enabled
    assert JobOptions(notes_template=NotesTemplate.DIARY, speakers="2").speaker_spec.enabled
    assert not JobOptions(speakers="none").speaker_spec.enabled


def test_speakers_are_part_of_the_cache_variant_only_when_asked() -> None:
    base = dict(job_id="j", model="base", language="en", duration_s=60, chunk_seconds=1200)
    none = ChunkPlan.for_job(**base, overlap_s=2)  # type: ignore[arg-type]
    auto = ChunkPlan.for_job(**base, overlap_s=2, speakers="auto")  # type: ignore[arg-type]
    two = ChunkPlan.for_job(**base, overlap_s=2, speakers="2")  # type: ignore[arg-type]
    assert none.cache_variant == "en"
    assert len({none.cache_variant, auto.cache_variant, two.cache_variant}) == 3
    assert len({none.key, auto.key}) == 2


def _words(*spec: tuple[float, float, str]) -> list[Word]:
    return [Word(start=a, end=b, word=w) for a, b, w in spec]


def test_words_take_the_speaker_they_overlap_most_and_segments_split_at_changes() -> None:
    turns = [
        Turn(start=0.0, end=2.0, speaker="SPEAKER_1"),
        Turn(start=2.0, end=4.0, speaker="SPEAKER_2"),
    ]
    seg = Segment(
        start=0.0,
        end=4.0,
        text=" Can you? Yes I can.",
        words=_words(
            (0.1, 0.5, " Can"),
            (0.5, 1.2, " you?"),
            (1.9, 2.6, " Yes"),
            (2.6, 3.0, " I"),
            (3.0, 3.5, " can."),
        ),
    )
    out = with_speakers([seg], turns)
    assert [(s.speaker, s.text, s.start, s.end) for s in out] == [
        ("SPEAKER_1", " Can you?", 0.1, 1.2),
        ("SPEAKER_2", " Yes I can.", 1.9, 3.5),
    ]
    assert all(w.speaker == s.speaker for s in out for w in s.words)
    # A word in a pause the diarizer left out goes to the nearest turn.
    assert speaker_at(5.0, 5.2, turns) == "SPEAKER_2"
    assert with_speakers([seg], []) == [seg]


def test_labels_follow_first_appearance_and_talk_time_is_per_speaker() -> None:
    turns = relabel_by_first_turn(
        [
            Turn(start=5, end=8, speaker="0"),
            Turn(start=0, end=4, speaker="1"),
            Turn(start=8, end=9, speaker="1"),
        ]
    )
    assert [t.speaker for t in turns] == ["SPEAKER_1", "SPEAKER_2", "SPEAKER_1"]
    talk = talk_time(turns, {"SPEAKER_2": "Sam"})
    assert [(t.speaker, t.name, t.talk_s, t.turns) for t in talk] == [
        ("SPEAKER_1", None, 5.0, 2),
        ("SPEAKER_2", "Sam", 3.0, 1),
    ]
    assert talk[0].share == 0.625


def test_names_are_checked_and_two_speakers_never_share_one() -> None:
    known = ["SPEAKER_1", "SPEAKER_2"]
    assert check_names({"SPEAKER_1": "  Priya   Shah "}, known) == {"SPEAKER_1": "Priya Shah"}
    assert check_names({"SPEAKER_1": ""}, known) == {"SPEAKER_1": None}
    for names, code in (
        ({}, "no_speakers_named"),
        ({"SPEAKER_3": "X"}, "unknown_speaker"),
        ({"SPEAKER_1": "x" * 61}, "bad_speaker_name"),
        ({"SPEAKER_1": "a\x07b"}, "bad_speaker_name"),
    ):
        with pytest.raises(InvalidInput) as caught:
            check_names(names, known)  # type: ignore[arg-type]
        assert caught.value.code == code
    assert renamed({"SPEAKER_1": "Priya"}, {"SPEAKER_2": "Sam"}) == {
        "SPEAKER_1": "Priya",
        "SPEAKER_2": "Sam",
    }
    assert renamed({"SPEAKER_1": "Priya"}, {"SPEAKER_1": None}) == {}
    with pytest.raises(InvalidInput) as caught:
        renamed({"SPEAKER_1": "Priya"}, {"SPEAKER_2": "priya"})
    assert caught.value.code == "duplicate_speaker_name"


def _conversation(names: dict[str, str] | None = None) -> Transcript:
    turns = [
        Turn(start=0.0, end=2.0, speaker="SPEAKER_1"),
        Turn(start=2.2, end=4.0, speaker="SPEAKER_2"),
    ]
    segments = with_speakers(
        [
            Segment(
                start=0.0,
                end=4.0,
                text=" Can you ship it? Yes, on Friday.",
                words=_words(
                    (0.1, 0.4, " Can"),
                    (0.4, 0.6, " you"),
                    (0.6, 0.9, " ship"),
                    (0.9, 1.5, " it?"),
                    (2.3, 2.7, " Yes,"),
                    (2.8, 3.1, " on"),
                    (3.1, 3.8, " Friday."),
                ),
            )
        ],
        turns,
    )
    return Transcript(
        job_id="j",
        language="en",
        duration_s=4,
        model="base",
        segments=segments,
        turns=turns,
        speaker_names=names or {},
    )


def test_renderings_show_turns_and_names() -> None:
    plain = _conversation()
    assert to_txt(plain) == "SPEAKER_1: Can you ship it?\nSPEAKER_2: Yes, on Friday.\n"
    srt = to_srt(plain)
    assert "SPEAKER_1: Can you ship it?" in srt and "SPEAKER_2: Yes, on Friday." in srt
    vtt = to_vtt(plain)
    assert "<v SPEAKER_1>Can you ship it?" in vtt and "<v SPEAKER_2>Yes, on Friday." in vtt
    assert render(plain, "tsv").splitlines()[0] == "start\tend\ttext\tspeaker"
    named = _conversation({"SPEAKER_1": "Priya Shah", "SPEAKER_2": "<Sam>"})
    assert to_txt(named).startswith("Priya Shah: Can you ship it?\n<Sam>: Yes")
    assert "<v &lt;Sam&gt;>Yes, on Friday." in to_vtt(named)
    assert render(named, "rttm").splitlines() == [
        "SPEAKER j 1 0.000 2.000 <NA> <NA> Priya_Shah <NA> <NA>",
        "SPEAKER j 1 2.200 1.800 <NA> <NA> <Sam> <NA> <NA>",
    ]


def test_without_speakers_the_renderings_are_as_before() -> None:
    plain = _conversation().model_copy(update={"turns": []})
    segments = [
        s.model_copy(
            update={
                "speaker": None,
                "words": [w.model_copy(update={"speaker": None}) for w in s.words],
            }
        )
        for s in plain.segments
    ]
    plain = plain.model_copy(update={"segments": segments})
    assert ":" not in to_txt(plain) and "<v" not in to_vtt(plain)
    assert render(plain, "tsv").splitlines()[0] == "start\tend\ttext"
    assert render(plain, "rttm") == ""


def test_a_speakers_label_counts_in_the_subtitle_line_and_one_voice_needs_none() -> None:
    names = {"SPEAKER_1": "Alexandra Featherstonehaugh"}
    srt = to_srt(_conversation(names), SubtitleOptions(max_line_chars=20))
    lines = [line for block in srt.strip().split("\n\n") for line in block.split("\n")[2:]]
    # A label longer than the line stands alone on its line, like a word would.
    assert lines == [
        "Alexandra Featherstonehaugh:",
        "Can you ship it?",
        "SPEAKER_2: Yes,",
        "on Friday.",
    ]
    alone = _conversation()
    alone = alone.model_copy(update={"turns": alone.turns[:1]})
    alone = alone.model_copy(
        update={
            "segments": with_speakers(
                [
                    Segment(
                        start=0, end=1.5, text=" Can you ship it?", words=alone.segments[0].words
                    )
                ],
                alone.turns,
            )
        }
    )
    assert to_srt(alone).splitlines()[2] == "Can you ship it?"
    assert "<v SPEAKER_1>" in to_vtt(alone)
