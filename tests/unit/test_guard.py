"""The hallucination guard: every segment checked, on every decoding path
(run_jobs/transcribe/guard.py), and the guard's drops carried through the merge."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.domain.transcription_plan import ChunkPlan
from common.domain.transcripts import DroppedSegment, Segment, Word
from run_jobs.transcribe.guard import (
    COMPRESSION,
    LOOP,
    NO_SPEECH,
    NO_WORDS,
    PHANTOM,
    compression_ratio,
    drop_failing,
    has_loop,
    longest_loop,
    verdict,
)
from run_jobs.transcribe.merge import ChunkResult, merge, shift_dropped


def _seg(
    text: str,
    logprob: float | None = -0.3,
    no_speech: float | None = 0.05,
    *,
    start: float = 1,
    end: float = 2,
    ratio: float | None = None,
) -> Segment:
    return Segment(
        start=start,
        end=end,
        text=text,
        avg_logprob=logprob,
        no_speech_prob=no_speech,
        compression_ratio=ratio,
    )


def test_compression_ratio_is_whispers() -> None:
    import zlib

    text = "the committee met on tuesday morning to review the budget"
    assert compression_ratio(text) == len(text.encode()) / len(zlib.compress(text.encode()))
    assert compression_ratio("") == 0.0
    assert compression_ratio(text) < 2.4 < compression_ratio(" ".join(["we will"] * 40))


def test_a_looping_segment_fails_on_compression() -> None:
    loop = _seg(" I'm going to go to the store." * 12)
    assert verdict(loop) == COMPRESSION
    # The decoder's ratio is its window's: a loop across segments fails each of them.
    assert verdict(_seg(" I'm going to go.", ratio=3.1)) == COMPRESSION


def test_short_loops_fail_and_speech_repeating_itself_does_not() -> None:
    assert longest_loop(["a", "b", "c", "a", "b", "c", "a", "b", "c", "x"]) == (3, 3)
    assert longest_loop([]) == (0, 0)
    assert has_loop("no no no no no no no no")
    assert has_loop("Okay, thank you. Okay, thank you. Okay, thank you. Okay, thank you.")
    assert not has_loop("No, no, no, that is not what I said.")
    assert not has_loop("We met. We agreed. We left.")
    # Too short for zlib to see it, long enough to be a loop.
    assert verdict(_seg(" the the the the the the the the")) == LOOP


def test_the_batched_paths_you_on_white_noise_is_dropped() -> None:
    # What BatchedInferencePipeline returned for 60 s of white noise (tiny.en).
    kept, dropped = drop_failing([_seg(" you", -1.33, 0.95)])
    assert kept == [] and [d.reason for d in dropped] == [NO_SPEECH]
    assert dropped[0] == DroppedSegment(start=1, end=2, text=" you", reason=NO_SPEECH)


def test_what_whisper_says_over_noise_is_dropped_when_it_heard_no_speaker() -> None:
    # The sequential path on sox's white noise: just inside Whisper's own rule.
    kept, dropped = drop_failing([_seg(" You", -0.97, 0.95), _seg(" Thank you.", -0.5, 0.8)])
    assert kept == [] and {d.reason for d in dropped} == {PHANTOM}
    # The same words said by someone are kept.
    said = [_seg(" Thank you.", -0.3, 0.05)]
    assert drop_failing(said) == (said, [])


def test_a_subtitle_phrase_where_vad_heard_little_speech_is_a_phantom() -> None:
    credits = _seg(" Subtitles by the Amara.org community", -0.4, 0.3, start=40, end=44)
    thanks = _seg(" Thanks for watching!", -0.2, 0.1, start=50, end=52)
    speech = [(10.0, 20.0), (43.5, 44.0), (50.0, 51.8)]  # 0.5 of 4 s; 1.8 of 2 s
    assert verdict(credits, speech) == PHANTOM
    assert verdict(thanks, speech) is None  # someone said it
    assert verdict(credits) is None  # no VAD ran and the decoder heard speech: kept
    # A "Thank you." said after a pause: its words, not the segment's span, are measured.
    said = _seg(" Thank you.", start=60, end=63).model_copy(
        update={
            "words": [
                Word(start=62.2, end=62.5, word=" Thank"),
                Word(start=62.5, end=62.9, word=" you."),
            ]
        }
    )
    assert verdict(said, [(62.1, 63.0)]) is None


def test_punctuation_alone_is_not_speech() -> None:
    kept, dropped = drop_failing([_seg(" .", -0.68, 0.95), _seg(" ...", -0.2, 0.1)])
    assert kept == [] and {d.reason for d in dropped} == {NO_WORDS}


def test_speech_is_kept_even_when_uncertain_in_one_way_only() -> None:
    speech = [
        _seg(" Ship it on Friday."),
        _seg(" Quietly said.", -1.5, 0.2),  # low log-probability, but speech was heard
        _seg(" Loud room.", -0.4, 0.9),  # no-speech high, but the words are confident
        _seg(" Unscored.", None, None),
    ]
    kept, dropped = drop_failing(speech)
    assert kept == speech and dropped == []


def test_the_rules_can_be_limited_to_the_non_speech_ones() -> None:
    loop = _seg(" the the the the the the the the")
    assert drop_failing([loop], reasons=frozenset({NO_SPEECH})) == ([loop], [])


def _chunk(index: int, start: float, words: list[tuple[float, str]], dropped: list) -> ChunkResult:
    segs = [
        Segment(start=t, end=t + 0.4, text=w, words=[Word(start=t, end=t + 0.4, word=w)])
        for t, w in words
    ]
    return ChunkResult(
        plan_key="k",
        index=index,
        window_start_s=start,
        language="en",
        segments=segs,
        cut_start_s=None if index == 0 else 100.0,
        dropped_segments=dropped,
    )


def test_dropped_segments_reach_the_transcript_once_on_the_files_timeline() -> None:
    plan = ChunkPlan.for_job(
        job_id="j",
        model="tiny.en",
        language="en",
        duration_s=200,
        chunk_seconds=100,
        overlap_s=5,
    )
    # Chunk 1 decoded from 95 s: its drops are shifted onto the file's timeline.
    late = shift_dropped([DroppedSegment(start=60, end=62, text=" you", reason=NO_SPEECH)], 95)
    overlap = DroppedSegment(start=97, end=98, text=" so", reason=PHANTOM)
    chunks = [
        _chunk(
            0,
            0,
            [(10, " one")],
            [DroppedSegment(start=5, end=6, text=" .", reason=NO_WORDS), overlap],
        ),
        _chunk(1, 95, [(120, " two")], [overlap, *late]),  # both chunks saw the overlap
    ]
    transcript = merge(plan, chunks)
    assert [(d.start, d.text) for d in transcript.dropped_segments] == [
        (5, " ."),
        (97, " so"),
        (155, " you"),
    ]
    assert transcript.task == "transcribe"


@pytest.mark.slow
@pytest.mark.parametrize("batched", ["always", "never"])
def test_white_noise_decodes_to_no_words_on_either_path(tmp_path: Path, batched: str) -> None:
    """60 s of white noise came back as " you" from the batched pipeline, " ." from the
    sequential one; either way notes were paid for. Now it ends like silence."""
    import subprocess

    from common.audio.decode import decode_window
    from run_jobs.transcribe.model_store import model_path
    from run_jobs.transcribe.transcriber import Transcriber, WhisperOptions
    from tests.fakes import settings

    path = tmp_path / "noise.wav"  # sox's white noise: Silero hears "speech" in it
    subprocess.run(
        [
            "sox",
            "-n",
            "-r",
            "16000",
            "-c",
            "1",
            str(path),
            "synth",
            "60",
            "whitenoise",
            "vol",
            "0.5",
        ],
        check=True,
    )
    noise = decode_window(path)
    s = settings(transcription={"cache_dir": str(tmp_path), "batched": batched, "device": "cpu"})
    transcriber = Transcriber(
        model_path("tiny.en", s, None), WhisperOptions.from_settings("tiny.en", s)
    )
    result = transcriber.transcribe(noise, language="en")
    assert [seg.text for seg in result.segments] == []


@pytest.mark.slow
def test_the_job_document_says_what_its_transcript_is_and_the_plan_reaches_the_decoder(
    tmp_path: Path,
) -> None:
    from common.domain.transcripts import Transcript, result_uri
    from run_jobs.transcribe.task import TaskEnv, TaskOutcome, run_task
    from tests.data.speech import make_speech
    from tests.fakes import memory_worker, settings

    s = settings(transcription={"cache_dir": str(tmp_path / "cache")})
    audio = make_speech(tmp_path / "s.wav", "The committee met on Tuesday to review the budget.")
    with memory_worker(s, audio) as (worker, blobs, job):
        plan = ChunkPlan.for_job(
            job_id=job.job_id,
            model="tiny.en",
            language="en",
            duration_s=4.0,
            chunk_seconds=1200,
            overlap_s=2,
            vocabulary=("committee", "budget"),
        )
        env = TaskEnv(plan=plan, index=0, attempt=0, execution=None)
        assert run_task(env, worker) == TaskOutcome.TRANSCRIBED
        summary = worker.jobs.get(job.job_id).transcription

    uri = result_uri(s, job.job_id, "transcript.json")
    transcript = Transcript.model_validate_json(blobs.read_bytes(uri))
    assert transcript.task == "transcribe" and transcript.options["task"] == "transcribe"
    assert transcript.options["hotwords"] == "committee, budget"
    assert transcript.options["guard_dropped"] == 0 and transcript.dropped_segments == []
    assert all(seg.compression_ratio for seg in transcript.segments)
    assert summary is not None and summary.model == "tiny.en" and summary.language == "en"
    assert summary.quality.words == sum(len(seg.words) for seg in transcript.segments) > 5


class _FakeWhisper:
    """Stands in for WhisperModel: the first decode says ``first``; each decode alone (the
    guard's, with the temperature fallback) says ``again``; the calls' keywords are kept."""

    def __init__(self, first: str, again: str) -> None:
        self.first, self.again = first, again
        self.calls: list[dict[str, object]] = []

    def transcribe(self, samples: object, **kwargs: object) -> tuple[list[object], object]:
        from types import SimpleNamespace

        self.calls.append(kwargs)
        text = self.again if "temperature" in kwargs else self.first
        seg = SimpleNamespace(
            start=0.2,
            end=2.8,
            text=text,
            words=None,
            avg_logprob=-0.2,
            no_speech_prob=0.01,
            compression_ratio=compression_ratio(text.strip()),
        )
        info = SimpleNamespace(language="en", language_probability=1.0, vad_options=None)
        return [seg], info


def _guarded(fake: _FakeWhisper, tmp_path: Path) -> object:
    from common.audio.decode import decode_window
    from run_jobs.transcribe.transcriber import Transcriber, WhisperOptions
    from tests.data.speech import make_speech

    options = WhisperOptions(
        model="tiny.en",
        device="cpu",
        compute_type="int8",
        beam_size=5,
        batched=False,
        batch_size=8,
        vad=True,
        word_timestamps=False,
        hotwords="Amara",
    )

    class Faked(Transcriber):
        model = fake  # type: ignore[assignment]

    samples = decode_window(make_speech(tmp_path / "s.wav", "The committee met on Tuesday."))
    return Faked(tmp_path, options).transcribe(samples, language="en")


def test_a_looping_window_is_decoded_again_with_the_fallbacks_and_replaced(
    tmp_path: Path,
) -> None:
    fake = _FakeWhisper(" in the end," * 20, " The committee met on Tuesday.")
    result = _guarded(fake, tmp_path)
    assert [s.text for s in result.segments] == [" The committee met on Tuesday."]
    assert result.dropped == []
    assert result.options["guard_redecoded_windows"] == 1
    assert result.options["redecoded_kept"] == 1
    first, again = fake.calls
    assert again["temperature"] == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    assert again["condition_on_previous_text"] is False
    assert first["hotwords"] == again["hotwords"] == "Amara"
    assert first["task"] == again["task"] == "transcribe"


def test_a_window_that_loops_again_is_dropped_and_recorded(tmp_path: Path) -> None:
    fake = _FakeWhisper(" in the end," * 20, " the end the end the end the end")
    result = _guarded(fake, tmp_path)
    assert result.segments == []
    # No better than the first decoding, which stays, and is dropped with why.
    assert [(d.reason, d.text) for d in result.dropped] == [(COMPRESSION, fake.first)]
    assert result.options["guard_dropped"] == 1 and result.options["redecoded_kept"] == 0
