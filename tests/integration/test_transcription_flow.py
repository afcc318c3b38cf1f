"""Transcription through the local stack: real gsutil uploads, the real dispatch function, the
Pub/Sub work queues, the Cloud Run emulator running ``python -m run_jobs.transcribe`` pull
workers, and faster-whisper (tiny.en, int8) on espeak-ng speech with a known text."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
import requests
from google.cloud import pubsub_v1, run_v2, storage  # type: ignore[attr-defined]

from common.audio.decode import decode_window
from common.config.settings import Settings
from common.domain.jobs import Job, JobSource, JobState
from common.domain.messages import TranscriptionRequested
from common.domain.transcription_plan import ChunkPlan, work_prefix
from common.domain.transcripts import Transcript, result_uri
from common.edge.auth import issue_hs256
from common.gcp.cloud_run import CloudRunLauncher
from common.gcp.gcs import GcsBlobStore
from common.gcp.job_store import FirestoreJobStore
from tests.data.sounds import RATE, music, write_wav
from tests.data.speech import KNOWN_TEXT, make_speech, repeated, word_error_rate
from tests.integration.helpers import Tap, gsutil_upload, inbox_job_id, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DONE = (JobState.TRANSCRIBED, JobState.SUMMARIZING, JobState.COMPLETED)


@pytest.fixture
def ready_tap(settings: Settings, unique: str):  # type: ignore[no-untyped-def]
    tap = Tap(settings.project, settings.topics.transcripts_ready, f"ready-{unique}")
    yield tap
    tap.delete()


@pytest.fixture(scope="module")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="module")
def short_speech(speech_dir: Path) -> Path:
    return make_speech(speech_dir / "short.wav")  # about 30 s


@pytest.fixture(scope="module")
def long_speech(speech_dir: Path) -> Path:
    return make_speech(speech_dir / "long.wav", repeated(3))  # about 95 s


def _job_in(store: FirestoreJobStore, job_id: str, states: tuple[JobState, ...]) -> Job | None:
    try:
        job = store.get(job_id)
    except Exception:
        return None
    if job.state == JobState.FAILED and JobState.FAILED not in states:
        raise AssertionError(f"job failed: {job.error}")
    return job if job.state in states else None


def _wait_done(store: FirestoreJobStore, job_id: str, timeout_s: float = 240) -> Job:
    return wait_for(
        lambda: _job_in(store, job_id, DONE), timeout_s=timeout_s, what=f"{job_id} transcribed"
    )


def _transcript_bytes(settings: Settings, job_id: str) -> bytes:
    return GcsBlobStore(settings.project).read_bytes(
        result_uri(settings, job_id, "transcript.json")
    )


def _transcript(settings: Settings, job_id: str) -> Transcript:
    return Transcript.model_validate_json(_transcript_bytes(settings, job_id))


def _ready_for(tap: Tap, job_id: str) -> int:
    return sum(json.loads(m.data)["job_id"] == job_id for m in tap.drain(settle_s=3))


def _task_logs(stack, execution: str = "*") -> str:  # type: ignore[no-untyped-def]
    """The task logs of one execution (by name), or of every execution of the stack."""
    folder = execution.rsplit("/", 1)[-1]
    logs = sorted(stack.local.executions_dir.glob(f"{folder}/task-*.log"))
    return "".join(p.read_text() for p in logs)


def _job_log(stack, job: Job) -> str:  # type: ignore[no-untyped-def]
    """The task log lines about this job, whichever workers handled it (each serves many)."""
    marker = f'"job_id": "{job.job_id}"'
    log = _task_logs(stack)
    return "".join(line for line in log.splitlines(keepends=True) if marker in line)


def _executions(settings: Settings, run_job: str) -> list[run_v2.Execution]:
    launcher = CloudRunLauncher(settings)
    return list(launcher.executions.list_executions(parent=launcher.job_path(run_job)))


def test_upload_is_transcribed_with_known_text(
    clean_stack, settings, store, ready_tap, unique, short_speech
):
    job_id = gsutil_upload(settings, short_speech, f"{unique}/meeting.wav")

    job = _wait_done(store, job_id)
    # Its one chunk went to the batch tier's queue and a CPU worker took it.
    assert job.coordination.work_tier == "cpu" and job.coordination.work_chunks == 1
    assert job.execution is None and job.coordination.work_queued_at is not None
    assert _job_log(clean_stack, job).count('"event": "chunk_transcribed"') == 1
    assert JobState.DISPATCHED in job.state_times and JobState.TRANSCRIBING in job.state_times
    transcript = _transcript(settings, job_id)
    assert word_error_rate(KNOWN_TEXT, transcript.text) <= 0.15, transcript.text
    assert transcript.model == "tiny.en" and transcript.language == "en"
    assert 25 < transcript.duration_s < 40
    words = [w for s in transcript.segments for w in s.words]
    assert len(words) >= 80 and all(a.start <= b.start for a, b in itertools.pairwise(words))
    assert transcript.options["compute_type"] == "int8" and transcript.options["vad"] is True
    assert transcript.task == "transcribe" and transcript.options["guard"] is True
    # The job document says how trustworthy the transcript reads.
    assert job.transcription is not None and job.transcription.model == "tiny.en"
    quality = job.transcription.quality
    assert quality.words == len(words) and quality.segments == len(transcript.segments)
    assert quality.segments_dropped == len(transcript.dropped_segments)
    assert 0 <= quality.low_confidence_share < 0.5

    blobs = GcsBlobStore(settings.project)
    srt = blobs.read_bytes(job.outputs["transcript.srt"]).decode()
    vtt = blobs.read_bytes(job.outputs["transcript.vtt"]).decode()
    txt = blobs.read_bytes(job.outputs["transcript.txt"]).decode()
    assert srt.startswith("1\n00:00:0") and " --> " in srt
    assert vtt.startswith("WEBVTT\n\n00:00:0")
    assert word_error_rate(KNOWN_TEXT, txt) <= 0.15
    assert job.source.sha256 is not None and len(job.source.sha256) == 64
    assert _ready_for(ready_tap, job_id) == 1


def test_subtitles_are_rendered_again_from_the_stored_transcript_on_request(
    clean_stack, settings, store, unique, short_speech
):
    secret = settings.auth.jwt_secret
    assert secret is not None
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {issue_hs256(secret.get_secret_value(), unique)}"
    base = clean_stack.local.function_url("api")
    data = short_speech.read_bytes()
    ticket = api.post(
        f"{base}/v1/uploads",
        json={"filename": "talk.wav", "content_type": "audio/wav", "size_bytes": len(data)},
        timeout=30,
    ).json()
    put = requests.put(ticket["upload_url"], data=data, headers=ticket["headers"], timeout=30)
    assert put.status_code == 200, put.text
    job = api.post(f"{base}/v1/jobs", json={"audio_url": ticket["audio_url"]}, timeout=30).json()

    done = _wait_done(store, job["job_id"])
    path = f"{base}/v1/jobs/{job['job_id']}/transcript"
    narrow = api.get(path, params={"format": "srt", "max_line_chars": "20"}, timeout=30)
    stored = api.get(path, params={"format": "srt"}, timeout=30)
    tsv = api.get(path, params={"format": "tsv"}, timeout=30)

    assert narrow.status_code == 200, narrow.text
    assert narrow.headers["Content-Type"].startswith("application/x-subrip")
    blocks = [b.split("\n") for b in narrow.text.strip().split("\n\n")]
    lines = [line for block in blocks for line in block[2:]]
    assert all(" --> " in block[1] and 1 <= len(block[2:]) <= 2 for block in blocks)
    assert lines and all(len(line) <= 20 for line in lines), lines
    transcript = _transcript(settings, job["job_id"])
    assert " ".join(lines).split() == transcript.text.split()  # every word, whole, in order
    assert narrow.text != stored.text  # the stored file has the default 42 characters
    assert (
        stored.text
        == GcsBlobStore(settings.project).read_bytes(done.outputs["transcript.srt"]).decode()
    )
    # A meeting (the default template) is diarized: the TSV names each segment's speaker.
    assert tsv.text.startswith("start\tend\ttext\tspeaker\n") and "transcript.tsv" in done.outputs


@pytest.fixture(scope="module")
def noise_then_tone(speech_dir: Path) -> Path:
    """60 s of white noise (Silero hears speech in it; the batched pipeline said " you"),
    then 30 s of a pure tone."""
    noise, tone, both = (speech_dir / f"{n}.wav" for n in ("noise", "tone", "noise-tone"))
    synth = ["sox", "-n", "-r", "16000", "-c", "1"]
    subprocess.run([*synth, str(noise), "synth", "60", "whitenoise", "vol", "0.5"], check=True)
    subprocess.run([*synth, str(tone), "synth", "30", "sine", "440", "vol", "0.5"], check=True)
    subprocess.run(["sox", str(noise), str(tone), str(both)], check=True)
    return both


def test_noise_and_a_tone_invent_no_words_and_end_as_an_empty_transcript(
    clean_stack, settings, store, unique, noise_then_tone
):
    job_id = gsutil_upload(settings, noise_then_tone, f"{unique}/noise.wav")

    job = wait_for(lambda: _job_in(store, job_id, (JobState.FAILED,)), what="the failure")
    transcript = _transcript(settings, job_id)
    assert transcript.segments == [] and transcript.text == ""
    assert all(d.reason for d in transcript.dropped_segments)  # kept for review, with why
    # Transcribed (nothing said), then no notes to pay for.
    assert JobState.TRANSCRIBED in job.state_times
    assert job.error is not None and job.error.code == "empty_transcript"
    assert job.transcription is not None and job.transcription.quality.words == 0


@pytest.mark.parametrize("kind", ["silence", "music"])
def test_digital_silence_and_music_invent_no_words(
    clean_stack, settings, store, unique, tmp_path, kind
):
    samples = np.zeros(60 * RATE, dtype=np.float32) if kind == "silence" else music(30)
    job_id = gsutil_upload(
        settings, write_wav(tmp_path / f"{kind}.wav", samples), f"{unique}/x.wav"
    )

    job = wait_for(lambda: _job_in(store, job_id, (JobState.FAILED,)), what="the failure")
    assert _transcript(settings, job_id).segments == []
    assert job.error is not None and job.error.code == "empty_transcript"


def test_two_minutes_of_silence_inside_speech_get_no_words(
    clean_stack, settings, store, unique, tmp_path, short_speech
):
    speech = decode_window(short_speech)
    gap_start, gap_end = len(speech) / RATE, len(speech) / RATE + 120
    audio = np.concatenate([speech, np.zeros(120 * RATE, dtype=np.float32), speech])
    job_id = gsutil_upload(settings, write_wav(tmp_path / "gap.wav", audio), f"{unique}/gap.wav")

    job = _wait_done(store, job_id)
    transcript = _transcript(settings, job_id)
    words = [w for s in transcript.segments for w in s.words]
    # Nothing in the silence (half a second of slack for the words either side of it).
    assert not [w for w in words if gap_start + 0.5 < w.start < gap_end - 0.5], words
    assert word_error_rate(f"{KNOWN_TEXT} {KNOWN_TEXT}", transcript.text) <= 0.15
    assert job.transcription is not None and job.transcription.quality.segments_dropped == 0


def test_redelivered_request_queues_and_transcribes_once(
    clean_stack, settings, store, unique, short_speech
):
    before = {e.name for e in _executions(settings, settings.run_jobs.transcribe_cpu)}
    job_id = gsutil_upload(settings, short_speech, f"{unique}/twice.wav")
    dispatched = wait_for(
        lambda: _job_in(store, job_id, (JobState.TRANSCRIBING, *DONE)), what="dispatch"
    )
    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(settings.project, settings.topics.transcription_requests)
    body = TranscriptionRequested(job_id=job_id).model_dump_json().encode()
    for _ in range(3):  # what at-least-once delivery may do
        publisher.publish(topic, body, job_id=job_id).result()

    job = _wait_done(store, job_id)
    assert job.coordination.work_queued_at == dispatched.coordination.work_queued_at
    assert job.coordination.work_requeues == 0
    log = _job_log(clean_stack, job)
    assert log.count('"event": "chunk_transcribed"') == 1  # the model ran once for it
    # Workers are launched for the backlog, never more than the tier's cap at once.
    after = [
        e for e in _executions(settings, settings.run_jobs.transcribe_cpu) if e.name not in before
    ]
    assert sum(e.task_count for e in after) <= 1  # one chunk: one worker at most


def test_same_audio_again_is_a_cache_hit_that_runs_no_model(
    clean_stack, settings, store, ready_tap, unique, short_speech
):
    first_id = gsutil_upload(settings, short_speech, f"{unique}/first.wav")
    first = _wait_done(store, first_id)
    second_id = gsutil_upload(settings, short_speech, f"{unique}/copy-of-first.wav")
    second = _wait_done(store, second_id)

    assert second.source.sha256 == first.source.sha256
    assert second.usage.get("transcribe_cache_hits") == 1.0
    first_log = _job_log(clean_stack, first)
    second_log = _job_log(clean_stack, second)
    # A lingering lane execution may already hold the model, so what tells a model run is
    # the transcribed chunk, not the load.
    assert '"event": "chunk_transcribed"' in first_log
    assert '"event": "chunk_transcribed"' not in second_log
    assert '"event": "model_loaded"' not in second_log and '"event": "cache_hit"' in second_log
    a, b = _transcript(settings, first_id), _transcript(settings, second_id)
    assert b.job_id == second_id and b.options["content_cache"] is True
    assert first_id not in _transcript_bytes(settings, second_id).decode()
    assert [s.text for s in b.segments] == [s.text for s in a.segments]
    assert _ready_for(ready_tap, second_id) == 1


def test_corrupt_audio_fails_cleanly_without_retries(
    clean_stack, settings, store, ready_tap, unique, speech_dir, short_speech
):
    flac = make_speech(speech_dir / "for-corruption.flac")
    data = flac.read_bytes()
    corrupt = speech_dir / "corrupt.flac"
    corrupt.write_bytes(data[:42] + os.urandom(20_000))  # a real FLAC header, then noise
    dead = Tap(settings.project, settings.topics.transcription_requests_dead_letter, f"dl-{unique}")
    try:
        before = len(_executions(settings, settings.run_jobs.transcribe_cpu))
        job_id = gsutil_upload(settings, corrupt, f"{unique}/corrupt.flac")
        job = wait_for(lambda: _job_in(store, job_id, (JobState.FAILED,)), what="the failure")
        assert job.error is not None and job.error.code == "undecodable_audio"
        assert "cannot be decoded" in job.error.message
        assert job.execution is None  # nothing was launched
        assert dead.drain(settle_s=8) == []  # acknowledged, not retried into the dead letter
        assert len(_executions(settings, settings.run_jobs.transcribe_cpu)) == before
        assert _ready_for(ready_tap, job_id) == 0
    finally:
        dead.delete()


def _job_doc(settings: Settings, store: FirestoreJobStore, job_id: str, uri: str) -> None:
    job = Job.new(
        job_id=job_id,
        owner="test",
        source=JobSource(uri=uri),
        retention_days=1,
    )
    store.create(job)
    store.transition(job_id, JobState.DISPATCHED)


def test_multi_chunk_job_matches_the_single_chunk_transcript(
    clean_stack, settings, store, unique, long_speech
):
    # Outside the inbox prefix: on_upload ignores it, this test plans and launches itself.
    uri = f"gs://{settings.buckets.inbox}/direct/{unique}/long.wav"
    blob = storage.Client(project=settings.project).bucket(settings.buckets.inbox)
    blob.blob(f"direct/{unique}/long.wav").upload_from_filename(str(long_speech))
    launcher = CloudRunLauncher(settings)
    plans = {}
    # Different language settings so the second is not served from the content cache.
    for name, chunk_s, language in (("one", 600.0, None), ("three", 30.0, "en")):
        job_id = f"t-{unique}-{name}"
        _job_doc(settings, store, job_id, uri)
        plan = ChunkPlan.for_job(
            job_id=job_id,
            model="tiny.en",
            language=language,
            duration_s=95.0,
            chunk_seconds=chunk_s,
            overlap_s=2.0,
        )
        plans[name] = plan
        launcher.launch(
            settings.run_jobs.transcribe_cpu,
            env=plan.to_env(),
            task_count=plan.chunk_count,
            timeout_s=600,
        )
    assert (plans["one"].chunk_count, plans["three"].chunk_count) == (1, 3)
    for plan in plans.values():
        _wait_done(store, plan.job_id)

    one = _transcript(settings, plans["one"].job_id)
    three = _transcript(settings, plans["three"].job_id)
    chunks = list(GcsBlobStore(settings.project).list(work_prefix(settings, plans["three"])))
    assert len([c for c in chunks if "/chunk-" in c]) == 3
    assert three.options["chunk_count"] == 3
    # Up to boundary effects: a word or two may differ where a chunk was cut, none doubled.
    assert word_error_rate(one.text, three.text) <= 0.05, (one.text, three.text)
    assert word_error_rate(repeated(3), three.text) <= 0.15
    words = [w for s in three.segments for w in s.words]
    assert all(a.start <= b.start for a, b in itertools.pairwise(words))
    assert words[-1].end > 85  # the last chunk's words are on the file's timeline


def _worker_pids(settings: Settings) -> list[int]:
    """This stack's pull worker processes (their environment says so)."""
    pids = []
    stack = f"FIRESTORE_EMULATOR_HOST={os.environ['FIRESTORE_EMULATOR_HOST']}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        worker = any(e.startswith(b"AUDIONOTES_TRANSCRIBE_WORKER=") for e in environ)
        if b"run_jobs.transcribe" in cmdline and worker and stack in environ:
            pids.append(int(proc.name))
    return pids


def test_killed_worker_s_chunk_is_taken_up_and_the_job_completes(
    clean_stack, settings, store, ready_tap, unique, long_speech
):
    """Every worker is killed (SIGKILL: no clean-up) while one transcribes the job's chunk.
    The message is no longer kept, Pub/Sub hands it out again after the ack deadline, a new
    worker (Cloud Run's retry of the killed task) takes the stale claim over and the job
    completes, with one transcript and one ready message."""
    job_id = gsutil_upload(settings, long_speech, f"{unique}/killed.wav")
    wait_for(lambda: _job_in(store, job_id, (JobState.TRANSCRIBING,)), what="transcription start")
    pids = wait_for(lambda: _worker_pids(settings), what="the worker process")
    for pid in pids:
        os.kill(pid, signal.SIGKILL)

    job = _wait_done(store, job_id, timeout_s=300)
    log = _job_log(clean_stack, job)
    # Two deliveries of the chunk started the model: the killed one and the one that finished.
    assert log.count('"event": "task_started"') >= 2
    assert log.count('"event": "chunk_transcribed"') == 1
    transcript = _transcript(settings, job_id)
    assert word_error_rate(repeated(3), transcript.text) <= 0.15
    assert _ready_for(ready_tap, job_id) == 1
    assert JobState.FAILED not in job.state_times


def test_short_uploads_share_workers_and_their_model_loads(
    clean_stack, settings, store, ready_tap, unique, speech_dir
):
    """Four short files uploaded together (gsutil -m): the workers the backlog needs (at most
    the tier's cap) transcribe all of them, each loading the model once."""
    sentences = [f"{s.strip()}." for s in KNOWN_TEXT.split(".") if s.strip()]
    texts = [" ".join(sentences[i : i + 2]) for i in range(0, 8, 2) if sentences[i:]]
    files = [make_speech(speech_dir / f"short-{i}.wav", text) for i, text in enumerate(texts)]
    launcher = CloudRunLauncher(settings)
    run_job = settings.run_jobs.transcribe_cpu
    # Earlier tests' workers leave once idle: then every worker here is this test's.
    wait_for(lambda: launcher.active_tasks(run_job, within_s=3600) == 0, what="idle workers")
    before = len(_executions(settings, run_job))
    prefix = f"{settings.inbox_uri}{unique}/"
    subprocess.run(["gsutil", "-q", "-m", "cp", *map(str, files), prefix], check=True)
    ids = [inbox_job_id(settings, f"{unique}/{path.name}") for path in files]

    jobs = [_wait_done(store, job_id) for job_id in ids]

    launched = _executions(settings, settings.run_jobs.transcribe_cpu)[
        : len(_executions(settings, settings.run_jobs.transcribe_cpu)) - before
    ]
    workers = sum(e.task_count for e in launched)
    assert 1 <= workers <= settings.workers.max_cpu < len(jobs)
    log = "".join(_task_logs(clean_stack, e.name) for e in launched)
    # One model load per worker process, not per job (a retried task would be a new process).
    assert log.count('"event": "worker_started"') == log.count('"event": "model_loaded"')
    assert log.count('"event": "model_loaded"') <= workers
    assert log.count('"event": "chunk_transcribed"') == len(jobs)  # each job's model run, once
    for job, text in zip(jobs, texts, strict=True):
        assert word_error_rate(text, _transcript(settings, job.job_id).text) <= 0.15
        assert f'"job_id": "{job.job_id}"' in log
    ready = [json.loads(m.data)["job_id"] for m in ready_tap.drain(settle_s=3)]
    assert sorted(ready) == sorted(ids)  # one transcripts-ready message per job
