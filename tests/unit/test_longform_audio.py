"""Real speech through the chunked task path and the batched path: cuts land in silence and
no sentence is lost at a boundary; a window the batched pipeline drops is decoded again."""

from __future__ import annotations

import difflib
import wave
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from faster_whisper import BatchedInferencePipeline as _RealPipeline

from common.audio.decode import SAMPLE_RATE, decode_window
from common.domain.jobs import JobState
from common.domain.ports import Publisher
from common.domain.transcription_plan import ChunkPlan, work_prefix
from common.domain.transcripts import Transcript
from run_jobs.transcribe.audio_cache import AudioCache
from run_jobs.transcribe.merge import ChunkResult
from run_jobs.transcribe.model_store import model_path
from run_jobs.transcribe.task import TaskEnv, TaskOutcome, TranscribeServices, run_task
from run_jobs.transcribe.transcriber import Transcriber, WhisperOptions
from tests.data.speech import KNOWN_TEXT, make_speech, normalise
from tests.fakes import MemoryBlobStore, MemoryJobStore, new_job, settings

pytestmark = pytest.mark.slow

SENTENCES = [s.strip() + "." for s in KNOWN_TEXT.split(".") if s.strip()] + [
    "The baker opened his shop early because the flour had arrived overnight.",
    "A small boat carried the doctor across the river to the village.",
    "The children planted seven apple trees along the edge of the school field.",
    "On Friday the orchestra will play in the market square if it does not rain.",
    "My grandmother kept every letter she received in a wooden box under the stairs.",
    "The engineers tested the new bridge with twenty heavy trucks at midnight.",
    "After lunch the visitors walked up the hill to see the old lighthouse.",
]
LONG_PAUSE_S = 1.3  # the one long pause, placed a few seconds before the boundary at 30 s


def _found(sentence: str, transcript: str) -> bool:
    ref, hyp = normalise(sentence), normalise(transcript)
    blocks = difflib.SequenceMatcher(None, hyp, ref, autojunk=False).get_matching_blocks()
    return sum(b.size for b in blocks) >= 0.7 * len(ref)


def _write(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(SAMPLE_RATE)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype(np.int16).tobytes())
    return path


@pytest.fixture(scope="module")
def around_a_boundary(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[float, float]]:
    """~70 s of speech with 0.35 s pauses but one long pause ending after 24 s, and a sentence
    running across the nominal boundary at 30 s. Returns the file and the long pause."""
    folder = tmp_path_factory.mktemp("longform")
    pieces, spans, t = [], [], 0.0
    silence: tuple[float, float] | None = None
    for i, text in enumerate(SENTENCES):
        voice = decode_window(make_speech(folder / f"{i}.wav", text, speed_wpm=175))
        voice = voice[int(np.argmax(np.abs(voice) > 1e-3)) :]
        pause = 0.35
        if silence is None and t >= 24.0:
            pause, silence = LONG_PAUSE_S, (t, t + LONG_PAUSE_S)
        pieces += [np.zeros(round(pause * SAMPLE_RATE), np.float32), voice]
        spans.append((t + pause, t + pause + len(voice) / SAMPLE_RATE))
        t = spans[-1][1]
    pieces.append(np.zeros(SAMPLE_RATE, np.float32))
    assert silence is not None and silence[1] < 29.0
    assert any(a < 29.5 and b > 30.5 for a, b in spans), "a sentence must span the boundary"
    return _write(folder / "long.wav", np.concatenate(pieces)), silence


class _Null:
    def publish(self, topic: str, message: Any, **attributes: str) -> str:
        return "1"


def test_chunks_are_cut_in_the_silence_and_the_merge_keeps_every_sentence(
    around_a_boundary: tuple[Path, tuple[float, float]], tmp_path: Path
) -> None:
    audio, silence = around_a_boundary
    s = settings(transcription={"cache_dir": str(tmp_path / "cache")})
    job = new_job(uri="gs://test-inbox/uploads/long.wav")
    jobs, blobs = MemoryJobStore(job), MemoryBlobStore()
    jobs.transition(job.job_id, JobState.DISPATCHED)
    blobs.write_bytes(job.source.uri, audio.read_bytes(), content_type="audio/wav")
    worker = TranscribeServices(
        s, jobs, blobs, cast(Publisher, _Null()), AudioCache(tmp_path / "a", s, blobs)
    )
    duration = len(decode_window(audio)) / SAMPLE_RATE
    plan = ChunkPlan.for_job(
        job_id=job.job_id,
        model="tiny.en",
        language="en",
        duration_s=duration,
        chunk_seconds=30.0,
        overlap_s=2.0,
    )
    assert plan.chunk_count == 2
    outcomes = [
        run_task(TaskEnv(plan=plan, index=i, attempt=0, execution="x-1"), worker)
        for i in range(plan.chunk_count)
    ]
    assert outcomes == [TaskOutcome.CHUNK_DONE, TaskOutcome.TRANSCRIBED]
    uri = next(u for u in blobs.objects if u.endswith("/transcript.json"))
    transcript = Transcript.model_validate_json(blobs.objects[uri])
    missing = [x for x in SENTENCES if not _found(x, transcript.text)]
    assert not missing, transcript.text
    assert len(normalise(transcript.text)) <= 1.05 * len(normalise(" ".join(SENTENCES)))
    prefix = work_prefix(s, plan)
    first, second = (
        ChunkResult.model_validate_json(blobs.objects[u])
        for u in sorted(blobs.objects)
        if u.startswith(prefix) and "/chunk-" in u
    )
    assert first.cut_end_s == second.cut_start_s  # the neighbours agreed, each on its own
    assert second.cut_start_s is not None
    assert silence[0] < second.cut_start_s < silence[1]
    assert transcript.options["chunk_cuts_s"] == [round(second.cut_start_s, 3)]


class _DroppingPipeline:
    """The batched pipeline, but losing what it decoded between 20 and 45 s, as the GPU
    pipeline loses runs of sentences."""

    def __init__(self, model: Any) -> None:
        self.inner = _RealPipeline(model)

    def transcribe(self, audio: Any, **kwargs: Any) -> tuple[Any, Any]:
        segments, info = self.inner.transcribe(audio, **kwargs)
        kept = [s for s in segments if not 20.0 <= (s.start + s.end) / 2 < 45.0]
        return iter(kept), info


@pytest.fixture(scope="module")
def minute_of_speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_speech(tmp_path_factory.mktemp("minute") / "m.wav", " ".join(SENTENCES))


def _batched(tmp_path: Path) -> Transcriber:
    s = settings(transcription={"cache_dir": str(tmp_path), "batched": "always", "device": "cpu"})
    return Transcriber(model_path("tiny.en", s, None), WhisperOptions.from_settings("tiny.en", s))


def test_a_window_the_batched_pipeline_drops_is_decoded_again(
    minute_of_speech: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import faster_whisper

    samples = decode_window(minute_of_speech)
    transcriber = _batched(tmp_path)
    with monkeypatch.context() as patch:
        patch.setattr(faster_whisper, "BatchedInferencePipeline", _DroppingPipeline)
        result = transcriber.transcribe(samples, language="en")
    text = " ".join(x.text for x in result.segments)
    missing = [x for x in SENTENCES if not _found(x, text)]
    assert not missing, text
    assert result.options["redecoded_windows"] >= 1
    assert 20.0 <= result.options["redecoded_s"] <= 60.0
    starts = [x.start for x in result.segments]
    assert starts == sorted(starts)
    clean = transcriber.transcribe(samples, language="en")
    assert clean.options["redecoded_windows"] == 0  # clean speech: nothing decoded twice
    assert clean.options["decode_windows"] >= 2


def test_batched_silence_decodes_nothing(tmp_path: Path) -> None:
    quiet = np.random.default_rng(1).normal(0, 1e-3, 20 * SAMPLE_RATE).astype(np.float32)
    result = _batched(tmp_path).transcribe(quiet, language="en")
    assert result.segments == [] and result.options["decode_windows"] == 0


def test_sequential_decoding_is_checked_too_and_clean_speech_is_not_redone(
    minute_of_speech: Path, tmp_path: Path
) -> None:
    s = settings(transcription={"cache_dir": str(tmp_path), "batched": "never", "device": "cpu"})
    options = WhisperOptions.from_settings("tiny.en", s)
    result = Transcriber(model_path("tiny.en", s, None), options).transcribe(
        decode_window(minute_of_speech), language="en"
    )
    assert result.options["decode_windows"] >= 2 and result.options["redecoded_windows"] == 0
    text = " ".join(x.text for x in result.segments)
    assert not [x for x in SENTENCES if not _found(x, text)]
