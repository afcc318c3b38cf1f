"""Non-speech segments are dropped alike on every decoding path (issue 10, item 12)."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.domain.transcripts import Segment
from run_jobs.transcribe.speech_filter import drop_non_speech


def _seg(text: str, logprob: float | None, no_speech: float | None) -> Segment:
    return Segment(start=1, end=2, text=text, avg_logprob=logprob, no_speech_prob=no_speech)


def test_the_batched_paths_you_on_white_noise_is_dropped() -> None:
    # What BatchedInferencePipeline returned for 60 s of white noise (tiny.en).
    kept, dropped = drop_non_speech([_seg(" you", -1.33, 0.95)])
    assert kept == [] and [d.reason for d in dropped] == ["no_speech"]


def test_what_whisper_says_over_noise_is_dropped_when_it_heard_no_speaker() -> None:
    # The sequential path on sox's white noise: just inside Whisper's own rule.
    kept, dropped = drop_non_speech([_seg(" You", -0.97, 0.95), _seg(" Thank you.", -0.5, 0.8)])
    assert kept == [] and {d.reason for d in dropped} == {"phantom"}
    # The same words said by someone are kept.
    said = [_seg(" Thank you.", -0.3, 0.05)]
    assert drop_non_speech(said) == (said, [])


def test_punctuation_alone_is_not_speech() -> None:
    kept, dropped = drop_non_speech([_seg(" .", -0.68, 0.95), _seg(" ...", -0.2, 0.1)])
    assert kept == [] and {d.reason for d in dropped} == {"no_words"}


def test_speech_is_kept_even_when_uncertain_in_one_way_only() -> None:
    speech = [
        _seg(" Ship it on Friday.", -0.3, 0.01),
        _seg(" Quietly said.", -1.5, 0.2),  # low log-probability, but speech was heard
        _seg(" Loud room.", -0.4, 0.9),  # no-speech high, but the words are confident
        _seg(" Unscored.", None, None),
    ]
    kept, dropped = drop_non_speech(speech)
    assert kept == speech and dropped == []


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
