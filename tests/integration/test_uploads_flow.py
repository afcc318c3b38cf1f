"""A real gsutil upload into the local inbox becomes one QUEUED job and one message."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from common.domain.jobs import JobState, upload_job_id
from common.gcp.job_store import FirestoreJobStore
from tests.integration.helpers import Tap, wait_for


@pytest.fixture
def speech(tmp_path: Path) -> Path:
    path = tmp_path / "speech.wav"
    subprocess.run(
        ["espeak-ng", "-w", str(path), "The quarterly review starts at nine tomorrow."],
        check=True,
    )
    return path


@pytest.fixture
def tap(clean_stack, unique):  # type: ignore[no-untyped-def]
    s = clean_stack.local.settings
    t = Tap(s.project, s.topics.transcription_requests, f"tap-{unique}")
    yield t
    t.delete()


def _gsutil(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["gsutil", *args], capture_output=True, text=True, check=True)


def test_gsutil_upload_creates_one_queued_job_and_one_message(clean_stack, tap, speech, unique):
    s = clean_stack.local.settings
    uri = f"{s.inbox_uri}{unique}/speech.wav"
    _gsutil("cp", str(speech), uri)
    generation = _gsutil("stat", uri).stdout.split("Generation:")[1].split()[0]
    job_id = upload_job_id(
        s.buckets.inbox, f"{s.buckets.inbox_prefix}{unique}/speech.wav", generation
    )
    store = FirestoreJobStore(s.project, s.collections.jobs)

    job = wait_for(lambda: _maybe_get(store, job_id), what="the job")
    # QUEUED, or already further: the stack's dispatch takes queued jobs on at once.
    assert JobState.QUEUED in job.state_times and job.state != JobState.FAILED, job.error
    assert job.source.uri == uri
    assert job.source.bytes == speech.stat().st_size
    messages = tap.drain()
    assert [json.loads(m.data)["job_id"] for m in messages] == [job_id]
    assert messages[0].attributes["job_id"] == job_id
    assert messages[0].attributes["traceparent"].startswith("00-")


def test_objects_outside_the_inbox_prefix_are_not_jobs(clean_stack, tap, speech, unique):
    s = clean_stack.local.settings
    _gsutil("cp", str(speech), f"gs://{s.buckets.inbox}/elsewhere/{unique}.wav")
    _gsutil("cp", str(speech), f"{s.inbox_uri}{unique}/real.wav")  # a marker that does count
    messages = tap.drain(settle_s=3)
    assert len(messages) == 1
    store = FirestoreJobStore(s.project, s.collections.jobs)
    assert [j.source.uri for j in store.list().jobs] == [f"{s.inbox_uri}{unique}/real.wav"]


def test_duplicate_finalize_events_make_one_job_and_one_message(clean_stack, tap, speech, unique):
    """At-least-once: the real event plus six copies of it delivered at once."""
    from google.cloud import storage  # type: ignore[attr-defined]

    s = clean_stack.local.settings
    name = f"{s.buckets.inbox_prefix}{unique}/dup.wav"
    blob = storage.Client(project=s.project).bucket(s.buckets.inbox).blob(name)
    blob.upload_from_filename(str(speech), content_type="audio/wav")
    body = json.dumps(
        {
            "bucket": s.buckets.inbox,
            "name": name,
            "generation": str(blob.generation),
            "size": str(blob.size),
            "contentType": "audio/wav",
        }
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": f"evt-{unique}",
        "ce-type": "google.cloud.storage.object.v1.finalized",
        "ce-source": f"//storage.googleapis.com/projects/_/buckets/{s.buckets.inbox}",
        "ce-subject": f"objects/{name}",
    }
    url = clean_stack.local.function_url("on_upload")

    def deliver(_: int) -> int:
        """Like Pub/Sub: a delivery answered 5xx is delivered again until it is acknowledged."""
        failures = 0
        while True:
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=30):
                    return failures
            except urllib.error.HTTPError as err:
                assert err.code == 500
                failures += 1
                assert failures < 20
                time.sleep(0.5)

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(deliver, range(6)))
    store = FirestoreJobStore(s.project, s.collections.jobs)
    job_id = upload_job_id(s.buckets.inbox, name, blob.generation)
    messages = tap.drain(settle_s=3)
    assert [j.job_id for j in store.list().jobs] == [job_id]
    assert store.get(job_id).coordination.request_message_id is not None
    assert [json.loads(m.data)["job_id"] for m in messages] == [job_id]


def test_empty_upload_fails_with_a_clear_error_and_no_message(clean_stack, tap, tmp_path, unique):
    s = clean_stack.local.settings
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    _gsutil("cp", str(empty), f"{s.inbox_uri}{unique}/empty.wav")
    store = FirestoreJobStore(s.project, s.collections.jobs)
    job = wait_for(lambda: next(iter(store.list(state=JobState.FAILED).jobs), None), what="FAILED")
    assert job.error is not None and job.error.code == "empty_audio"
    assert tap.drain() == []


def _maybe_get(store: FirestoreJobStore, job_id: str):  # type: ignore[no-untyped-def]
    from common.domain.errors import JobNotFound

    try:
        return store.get(job_id)
    except JobNotFound:
        return None


def test_env_reaches_gsutil_through_boto_config(clean_stack):
    """`python -m emulators env` is what a user evals; its BOTO_CONFIG must point gsutil here."""
    out = subprocess.run(
        [sys.executable, "-m", "emulators", "env"], capture_output=True, text=True, check=True
    ).stdout
    exports = dict(line.removeprefix("export ").split("=", 1) for line in out.splitlines())
    boto = Path(exports["BOTO_CONFIG"]).read_text()
    assert f"gs_json_port = {clean_stack.local.ports.gcs_https}" in boto
    assert exports["AUDIONOTES_INBOX"].strip("'") == clean_stack.local.settings.inbox_uri


def test_an_upload_named_outside_latin1_becomes_its_job(clean_stack, speech, unique):
    """The bridge percent-encodes the CloudEvent subject as Eventarc does (it crashed on the
    header, and Pub/Sub redelivered the event for ever)."""
    s = clean_stack.local.settings
    name = f"{s.buckets.inbox_prefix}{unique}/☃ réunion.wav"
    _gsutil("cp", str(speech), f"gs://{s.buckets.inbox}/{name}")
    generation = _gsutil("stat", f"gs://{s.buckets.inbox}/{name}").stdout
    generation = generation.split("Generation:")[1].split()[0]
    store = FirestoreJobStore(s.project, s.collections.jobs)
    job = wait_for(
        lambda: _maybe_get(store, upload_job_id(s.buckets.inbox, name, generation)),
        what="the job",
    )
    assert job.source.uri == f"gs://{s.buckets.inbox}/{name}"
    assert job.state != JobState.FAILED, job.error


def test_the_upload_subscription_dead_letters_what_it_cannot_deliver(clean_stack):
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

    s = clean_stack.local.settings
    subscriber = pubsub_v1.SubscriberClient()
    sub = subscriber.get_subscription(
        subscription=subscriber.subscription_path(s.project, s.subscriptions.inbox_events)
    )
    assert sub.dead_letter_policy.dead_letter_topic.endswith(
        f"/topics/{s.topics.inbox_events_dead_letter}"
    )
    assert sub.dead_letter_policy.max_delivery_attempts == s.delivery.max_delivery_attempts
