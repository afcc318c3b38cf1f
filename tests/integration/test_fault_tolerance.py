"""DESIGN §3, fault tolerance, on the real local stack.

Where each promise is tested:

- Every handler receives the same message three times: one result, no state regression.
  - ``on_upload``: tests/integration/test_uploads_flow.py
    ``test_duplicate_finalize_events_make_one_job_and_one_message`` (seven copies at once).
  - ``api`` POST with the same Idempotency-Key: tests/integration/test_api.py
    ``test_submit_upload_get_list_and_idempotent_resubmission`` (one after another) and
    ``test_three_concurrent_submissions_with_one_key_make_one_job`` below (at once).
  - ``dispatch``: tests/integration/test_transcription_flow.py
    ``test_redelivered_request_launches_no_second_execution`` (three extra copies).
  - the transcribe task: ``test_the_same_task_three_times_makes_one_transcript`` below.
  - ``notes``: tests/integration/test_notes_flow.py ``test_three_deliveries_make_one_result``
    (one notes.json, one LLM call, one charge) and, with a webhook,
    ``test_three_notes_deliveries_send_one_webhook`` below.
  - ``dead_letters``: ``test_poison_request_is_dead_lettered_and_fails_the_job`` below.
- A transcribe task killed mid-run, the job completes: tests/integration/
  test_transcription_flow.py ``test_killed_task_is_retried_and_the_job_completes``.
- A poison message goes to the dead-letter topic and its job is FAILED with the reason:
  ``test_poison_request_is_dead_lettered_and_fails_the_job``.
- The Pub/Sub emulator restarted mid-flow, no job lost:
  ``test_pubsub_restart_loses_no_job`` (the ``sweep`` function re-publishes lost messages).
- An execution that ends without finishing its job (cancelled, or killed by its timeout after
  its retries): ``test_a_job_whose_execution_died_is_relaunched_by_the_sweep``.
- The notes provider down for a while: ``test_notes_provider_outage`` (what the chain does:
  retries through a short outage; through a long one the breaker opens and jobs complete
  with the extractive fallback, marked as such; once the provider is back, jobs use it).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from google.cloud import firestore, pubsub_v1  # type: ignore[attr-defined]
from google.protobuf import timestamp_pb2

from common.config.settings import Settings
from common.domain.jobs import Job, JobOptions, JobSource, JobState
from common.domain.messages import TranscriptionRequested, TranscriptReady
from common.domain.notes import NotesDocument
from common.domain.transcription_plan import ChunkPlan
from common.domain.transcripts import Transcript, result_uri
from common.edge.auth import issue_hs256
from common.gcp.breaker_store import FirestoreBreakerStore
from common.gcp.cloud_run import CloudRunLauncher
from common.gcp.gcs import GcsBlobStore
from common.gcp.job_store import FirestoreJobStore
from common.gcp.notes_engine import OPENAI
from common.gcp.pubsub import PubSubPublisher
from common.notes.breaker import BreakerPosition
from functions.dead_letters import DELIVERY_COUNT, SOURCE_SUBSCRIPTION
from tests.data.speech import make_speech, repeated, word_error_rate
from tests.integration.helpers import Tap, gsutil_upload, wait_for
from tests.integration.test_api import Client, upload
from tests.integration.test_notes_chain import LocalLlm
from tests.integration.test_notes_flow import real_transcript

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SHORT_TEXT = (
    "The committee met on Tuesday morning to review the budget for the coming year. "
    "Everyone agreed that the new library should open in the spring."
)


@pytest.fixture(scope="module")
def short_speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_speech(tmp_path_factory.mktemp("speech") / "short.wav", SHORT_TEXT)  # ~9 s


@pytest.fixture
def llm(clean_stack) -> LocalLlm:  # type: ignore[no-untyped-def]
    local = LocalLlm(clean_stack.local.url(clean_stack.local.ports.openai))
    local.reset()
    return local


def _final(store: FirestoreJobStore, job_id: str, timeout_s: float = 120) -> Job:
    def final() -> Job | None:
        job = store.get(job_id)
        return job if job.state.is_final else None

    return wait_for(
        final,
        timeout_s=timeout_s,
        what=f"job {job_id} to finish",
    )


def _transcribed_job(settings: Settings, store: FirestoreJobStore, job_id: str) -> Job:
    """A TRANSCRIBED job with a real transcript.json, as the transcribe task leaves it."""
    store.create(
        Job.new(
            job_id=job_id,
            owner=f"tests-{job_id}",  # its own caller: no notes shared through the cache
            source=JobSource(uri=f"gs://{settings.buckets.inbox}/uploads/{job_id}.wav"),
            retention_days=1,
        )
    )
    GcsBlobStore(settings.project).write_bytes(
        result_uri(settings, job_id, "transcript.json"),
        real_transcript(job_id),
        content_type="application/json",
    )
    return store.transition(job_id, JobState.TRANSCRIBED).job


# A poison message -------------------------------------------------------------------------


class _DownAudioHost:
    """An audio host that answers every GET with 503: down for longer than Pub/Sub retries."""

    def __init__(self) -> None:
        self.gets = 0
        lock = threading.Lock()
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with lock:
                    host.gets += 1
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/meeting.wav"


@pytest.fixture
def down_host() -> Iterator[_DownAudioHost]:
    host = _DownAudioHost()
    yield host
    host.server.shutdown()


def test_poison_request_is_dead_lettered_and_fails_the_job(
    clean_stack, settings, store, unique, down_host
):
    """A job whose audio host is down: every dispatch attempt fails transiently (the probe
    gets 503), so Pub/Sub gives up after max_delivery_attempts, dead-letters the request, and
    ``dead_letters`` fails the job saying so. Two more copies of the dead letter change nothing.
    """
    dead = Tap(settings.project, settings.topics.transcription_requests_dead_letter, f"dl-{unique}")
    try:
        job_id = f"p-{unique}"
        store.create(
            Job.new(
                job_id=job_id,
                owner="tests",
                source=JobSource(uri=down_host.url),
                retention_days=1,
            )
        )
        PubSubPublisher(settings.project).publish(
            settings.topics.transcription_requests, TranscriptionRequested(job_id=job_id)
        )

        job = _final(store, job_id, timeout_s=120)
        attempts = settings.delivery.max_delivery_attempts
        assert job.state is JobState.FAILED
        assert job.error is not None and job.error.code == "dead_lettered"
        assert f"on subscription {settings.subscriptions.dispatch};" in job.error.message
        assert f"after {attempts} delivery attempts" in job.error.message
        assert down_host.gets == attempts  # each delivery really tried, then Pub/Sub gave up
        assert job.execution is None

        [letter] = wait_for(lambda: dead.drain(settle_s=1), what="the dead letter copy")
        assert letter.attributes[DELIVERY_COUNT] == str(attempts)
        source = letter.attributes[SOURCE_SUBSCRIPTION]
        assert source.rsplit("/", 1)[-1] == settings.subscriptions.dispatch
        push = {
            "message": {
                "data": base64.b64encode(letter.data).decode(),
                "messageId": letter.message_id,
                "attributes": dict(letter.attributes),
            },
            "subscription": f"projects/{settings.project}/subscriptions/"
            f"{settings.subscriptions.transcription_requests_dead_letter}",
        }
        for _ in range(2):  # the same dead letter again: at-least-once holds here too
            _post(clean_stack.local.function_url("dead_letters"), push)
        again = store.get(job_id)
        assert again.state_times == job.state_times and again.error == job.error
        assert again.updated_at == job.updated_at
    finally:
        dead.delete()


def _post(url: str, body: dict[str, Any], timeout_s: float = 60) -> bytes:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        assert response.status == 200
        return response.read()


# The Pub/Sub emulator restarted -----------------------------------------------------------


def test_pubsub_restart_loses_no_job(clean_stack, settings, store, unique, short_speech):
    """Two jobs wait on messages sitting in Pub/Sub: an upload's transcription request and a
    transcript-ready message. The emulator is killed (it keeps everything in memory: topics,
    subscriptions and messages are gone), ``up`` brings it back with empty topics, and the
    ``sweep`` function publishes each stuck job's message again; both jobs complete."""
    subscriber = pubsub_v1.SubscriberClient()
    held = [
        subscriber.subscription_path(settings.project, settings.subscriptions.dispatch),
        subscriber.subscription_path(settings.project, settings.subscriptions.notes),
    ]
    try:
        # Hold both messages in Pub/Sub: pull subscriptions keep them without delivering.
        for path in held:
            subscriber.modify_push_config(subscription=path, push_config={})
        queued = gsutil_upload(settings, short_speech, f"{unique}/restart.wav")
        wait_for(
            lambda: _request_published(store, queued), timeout_s=60, what="the request published"
        )
        transcribed = f"t-{unique}"
        _transcribed_job(settings, store, transcribed)
        PubSubPublisher(settings.project).publish(
            settings.topics.transcripts_ready, TranscriptReady(job_id=transcribed)
        )

        pid = clean_stack.procs.pid("pubsub")
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
        wait_for(lambda: clean_stack.procs.pid("pubsub") is None, what="the emulator to die")
        clean_stack.up()  # restarts it and recreates every topic and subscription, empty

        assert store.get(queued).state is JobState.QUEUED  # its message is gone
        assert store.get(transcribed).state is JobState.TRANSCRIBED
        # The README's runbook, as written: `python -m emulators sweep` right after the outage.
        swept = subprocess.run(
            [sys.executable, "-m", "emulators", "sweep"], capture_output=True, text=True, check=True
        )
        report = json.loads(swept.stdout)
        assert report["requests"] == [queued] and report["ready"] == [transcribed]

        for job_id in (queued, transcribed):
            job = _final(store, job_id, timeout_s=240)
            assert job.state is JobState.COMPLETED, job.error
        transcript = Transcript.model_validate_json(
            GcsBlobStore(settings.project).read_bytes(
                result_uri(settings, queued, "transcript.json")
            )
        )
        assert word_error_rate(SHORT_TEXT, transcript.text) <= 0.15, transcript.text
    finally:
        clean_stack.up()  # whatever happened: the emulator running, push configs restored


def test_a_job_whose_workers_died_is_requeued_by_the_sweep(
    clean_stack, settings, store, unique, tmp_path
):
    """Every worker execution is cancelled while one transcribes the job (as Cloud Run's
    timeout would end it), and the queue's copy of the chunk is taken away (as a queue lost
    with its state would be): the job rests in TRANSCRIBING with no worker and nothing queued.
    The sweep asks dispatch to queue its unfinished chunks again and scales the workers up; a
    new worker takes the chunk over and the job completes, the requeue counted."""
    speech = make_speech(tmp_path / "long.wav", repeated(3))  # ~95 s: several seconds of work
    job_id = gsutil_upload(settings, speech, f"{unique}/cancelled.wav")
    wait_for(
        lambda: store.get(job_id).state is JobState.TRANSCRIBING,
        timeout_s=120,
        what="the transcription to start",
    )
    launcher = CloudRunLauncher(settings)
    subscriber = pubsub_v1.SubscriberClient()
    queue = subscriber.subscription_path(settings.project, settings.subscriptions.work_normal)
    run_job = launcher.job_path(settings.run_jobs.transcribe_cpu)
    for execution in launcher.executions.list_executions(parent=run_job):
        if not execution.completion_time:
            launcher.cancel(execution.name)
    wait_for(
        lambda: launcher.active_tasks(settings.run_jobs.transcribe_cpu, within_s=3600) == 0,
        what="the workers to end",
    )
    subscriber.seek(request={"subscription": queue, "time": _now_timestamp()})  # queue emptied
    stuck = store.get(job_id)
    assert stuck.state is JobState.TRANSCRIBING, "it finished before the cancel: audio too short"

    report = json.loads(_post(clean_stack.local.function_url("sweep"), {"older_than_s": 0}))
    assert job_id in report["requests"]

    job = _final(store, job_id, timeout_s=240)
    assert job.state is JobState.COMPLETED, job.error
    assert job.coordination.work_requeues == 1 and job.attempts == 0
    transcript = Transcript.model_validate_json(
        GcsBlobStore(settings.project).read_bytes(result_uri(settings, job_id, "transcript.json"))
    )
    assert word_error_rate(repeated(3), transcript.text) <= 0.15


def _now_timestamp() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


def _request_published(store: FirestoreJobStore, job_id: str) -> bool:
    try:
        return store.get(job_id).coordination.request_message_id is not None
    except Exception:
        return False


# The notes provider down ------------------------------------------------------------------


def test_notes_provider_outage(clean_stack, settings, store, unique, llm):
    """A short outage is retried within the call (backoff, same provider). An outage longer
    than one call's retries makes the job wait: it stays SUMMARIZING, its message is
    redelivered, and it completes with the provider when the provider is back. Through a long
    outage the shared breaker opens, and jobs wait a bounded number of deliveries (never
    into the dead letter), then complete with the extractive engine, saying so in the
    provenance (no charge). Once the provider is back and the breaker's open period is over,
    the next job's call is the half-open probe, the provider answers, and the breaker closes."""
    publisher = PubSubPublisher(settings.project)
    llm_settings = settings.llm

    def notes_for(job_id: str) -> tuple[Job, NotesDocument]:
        _transcribed_job(settings, store, job_id)
        publisher.publish(settings.topics.transcripts_ready, TranscriptReady(job_id=job_id))
        job = _final(store, job_id)
        assert job.state is JobState.COMPLETED, job.error
        doc = NotesDocument.model_validate_json(
            GcsBlobStore(settings.project).read_bytes(result_uri(settings, job_id, "notes.json"))
        )
        return job, doc

    # A short outage: two 500s, then the provider answers. The job waits it out.
    llm.faults({"status": 500, "times": 2})
    _, doc = notes_for(f"short-{unique}")
    assert doc.provenance.provider == OPENAI
    assert [a.outcome for a in doc.provenance.attempts][-1] == "ok"
    assert [r["status"] for r in llm.requests()] == [500, 500, 200]

    # Down for longer than one call's retries: the job waits for a redelivery, no fallback.
    llm.reset()
    llm.faults({"status": 500, "times": llm_settings.max_attempts})
    waited, doc = notes_for(f"wait-{unique}")
    assert doc.provenance.provider == OPENAI and waited.cost_usd > 0
    assert waited.coordination.provider_waits == 1
    assert [r["status"] for r in llm.requests()] == [500] * llm_settings.max_attempts + [200]
    assert [a.outcome for a in doc.provenance.attempts] == ["ok"]  # the redelivery's call

    # A long outage: every call fails.
    llm.reset()
    llm.faults({"status": 500, "times": 1000})
    first, first_doc = notes_for(f"long-1-{unique}")
    second, second_doc = notes_for(f"long-2-{unique}")
    for job, doc in ((first, first_doc), (second, second_doc)):
        # They waited as long as the dead-letter limit allows, then took the fallback.
        assert job.coordination.provider_waits == settings.delivery.max_delivery_attempts - 2
        assert doc.provenance.provider == "extractive"
        assert doc.provenance.fallback_reason is not None
        assert doc.provenance.fallback_reason.startswith(f"{OPENAI}:")
        assert job.cost_usd == 0 and doc.notes.key_points
    failed_calls = len(llm.requests())
    assert failed_calls >= llm_settings.breaker_failure_threshold
    breakers = FirestoreBreakerStore(
        lambda: firestore.Client(project=settings.project), settings.collections.breakers
    )
    opened = breakers.read(OPENAI)
    assert opened.state is BreakerPosition.OPEN and opened.opened_at is not None
    # With the breaker open, a job costs the provider nothing at all.
    _, third_doc = notes_for(f"long-3-{unique}")
    assert third_doc.provenance.provider == "extractive"
    assert [a.outcome for a in third_doc.provenance.attempts] == ["breaker_open"]
    assert len(llm.requests()) == failed_calls

    # The provider is back. After the open period, the next job probes it and uses it.
    llm.reset()
    reopen = opened.opened_at + timedelta(seconds=llm_settings.breaker_open_s)
    wait_for(
        lambda: datetime.now(UTC) > reopen,
        timeout_s=llm_settings.breaker_open_s + 30,
        what="the breaker's open period to pass",
    )
    back, back_doc = notes_for(f"back-{unique}")
    assert back_doc.provenance.provider == OPENAI and back.cost_usd > 0
    assert [r["status"] for r in llm.requests()] == [200]
    assert breakers.read(OPENAI).state is BreakerPosition.CLOSED


# The transcribe task three times ----------------------------------------------------------


def test_the_same_task_three_times_makes_one_transcript(
    clean_stack, settings, store, unique, short_speech
):
    """Three copies of one Cloud Run task (what a retry, or a task started twice, looks
    like: the same plan, task index and execution) run at once against one job: one
    transcript, one transcripts-ready message, usage counted once, and every copy exits 0."""
    ready = Tap(settings.project, settings.topics.transcripts_ready, f"ready-{unique}")
    try:
        job_id = f"x-{unique}"
        name = f"direct/{unique}/short.wav"
        uri = f"gs://{settings.buckets.inbox}/{name}"  # outside the inbox prefix: no on_upload
        subprocess.run(["gsutil", "-q", "cp", str(short_speech), uri], check=True)
        execution_id = f"{settings.run_jobs.transcribe_cpu}-{unique}"
        execution = (
            f"projects/{settings.project}/locations/{settings.region}/jobs/"
            f"{settings.run_jobs.transcribe_cpu}/executions/{execution_id}"
        )
        store.create(
            Job.new(job_id=job_id, owner="tests", source=JobSource(uri=uri), retention_days=1)
        )
        store.transition(job_id, JobState.DISPATCHED, execution=execution)
        plan = ChunkPlan.for_job(
            job_id=job_id,
            model="tiny.en",
            language=None,
            duration_s=9.0,
            chunk_seconds=600,
            overlap_s=2.0,
        )
        env = {
            **clean_stack.child_env(),
            **plan.to_env(),
            "CLOUD_RUN_JOB": settings.run_jobs.transcribe_cpu,
            "CLOUD_RUN_EXECUTION": execution_id,
            "CLOUD_RUN_TASK_INDEX": "0",
            "CLOUD_RUN_TASK_COUNT": "1",
            "AUDIONOTES_TRANSCRIPTION__CACHE_DIR": str(
                clean_stack.local.state_dir / "transcribe-cache"
            ),
        }
        tasks = [
            subprocess.Popen(
                [sys.executable, "-m", "run_jobs.transcribe"],
                env={**env, "CLOUD_RUN_TASK_ATTEMPT": str(attempt)},
                cwd=str(Path(__file__).resolve().parents[2]),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for attempt in range(3)
        ]
        outputs = [task.communicate(timeout=300)[0].decode(errors="replace") for task in tasks]
        assert [task.returncode for task in tasks] == [0, 0, 0], outputs

        job = store.get(job_id)
        assert job.state in (JobState.TRANSCRIBED, JobState.SUMMARIZING, JobState.COMPLETED)
        assert job.usage["transcribed_audio_s"] == pytest.approx(plan.duration_s)  # once
        messages = [m for m in ready.drain(settle_s=3) if json.loads(m.data)["job_id"] == job_id]
        assert len(messages) == 1
        transcript = Transcript.model_validate_json(
            GcsBlobStore(settings.project).read_bytes(
                result_uri(settings, job_id, "transcript.json")
            )
        )
        assert word_error_rate(SHORT_TEXT, transcript.text) <= 0.15, transcript.text
        assert JobState.FAILED not in job.state_times
    finally:
        ready.delete()


# notes three times, with a webhook --------------------------------------------------------


def test_three_notes_deliveries_send_one_webhook(
    clean_stack, settings, store, unique, llm, receiver
):
    """The transcript-ready message delivered three times to a job with a webhook: one
    notes.json, one LLM call, one completion, one webhook (its receipt stops the repeats).
    The two repeats arrive together, after the first finished, as Pub/Sub redeliveries do."""
    rec = receiver(204)
    job_id = f"w-{unique}"
    store.create(
        Job.new(
            job_id=job_id,
            owner="tests",
            source=JobSource(uri=f"gs://{settings.buckets.inbox}/uploads/{job_id}.wav"),
            options=JobOptions(webhook_url=rec.url),
            retention_days=1,
        )
    )
    blobs = GcsBlobStore(settings.project)
    blobs.write_bytes(
        result_uri(settings, job_id, "transcript.json"),
        real_transcript(job_id),
        content_type="application/json",
    )
    store.transition(job_id, JobState.TRANSCRIBED)
    log = Path(clean_stack.procs.log_file("function-notes"))

    def handled(needle: str) -> int:
        return sum(needle in line for line in log.read_text(errors="replace").splitlines())

    duplicates = handled("notes: already_completed")
    publisher = PubSubPublisher(settings.project)
    publisher.publish(settings.topics.transcripts_ready, TranscriptReady(job_id=job_id))
    job = _final(store, job_id)
    assert job.state is JobState.COMPLETED, job.error
    wait_for(lambda: rec.count() >= 1, what="the webhook")
    notes_json = blobs.stat(result_uri(settings, job_id, "notes.json"))
    assert notes_json is not None
    for _ in range(2):
        publisher.publish(settings.topics.transcripts_ready, TranscriptReady(job_id=job_id))
    wait_for(
        lambda: handled("notes: already_completed") >= duplicates + 2,
        what="both repeats to be handled",
    )

    again = store.get(job_id)
    assert again.state_times == job.state_times and again.cost_usd == job.cost_usd
    assert again.usage == job.usage and again.usage["llm_calls"] == 1
    stat = blobs.stat(result_uri(settings, job_id, "notes.json"))
    assert stat is not None and stat.generation == notes_json.generation
    assert len(llm.requests()) == 1
    assert rec.count() == 1 and rec.bodies[0]["job_id"] == job_id


# api: the same submission three times at once ---------------------------------------------


def test_three_concurrent_submissions_with_one_key_make_one_job(
    clean_stack, settings, store, unique, short_speech
):
    """POST /v1/jobs three times at once with one Idempotency-Key (a client retrying on a
    timeout): one job, created once, its request published once; every call answers 202."""
    secret = settings.auth.jwt_secret
    assert secret is not None
    client = Client(
        clean_stack.local.function_url("api"),
        issue_hs256(secret.get_secret_value(), f"carol-{unique}"),
        requests.Session(),
    )
    audio = upload(client, short_speech.read_bytes())
    tap = Tap(settings.project, settings.topics.transcription_requests, f"api3-{unique}")
    try:

        def submit(_: int) -> requests.Response:
            return client.call(
                "POST",
                "/v1/jobs",
                body={"audio_url": audio},
                headers={"Idempotency-Key": f"retry-{unique}"},
            )

        with ThreadPoolExecutor(3) as pool:
            responses = list(pool.map(submit, range(3)))
        assert [r.status_code for r in responses] == [202, 202, 202], [r.text for r in responses]
        bodies = [r.json() for r in responses]
        [job_id] = {b["job_id"] for b in bodies}
        assert sorted(b["replayed"] for b in bodies) == [False, True, True]
        messages = tap.drain(settle_s=3)
        assert [json.loads(m.data)["job_id"] for m in messages] == [job_id]
        assert store.get(job_id).coordination.request_message_id == messages[0].message_id
        assert [j.job_id for j in store.list().jobs] == [job_id]
    finally:
        tap.delete()
