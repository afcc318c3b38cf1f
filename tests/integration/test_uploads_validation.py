"""on_upload's validation with real gsutil uploads: content sniffing, options from object
metadata, size limits, placeholders; a rejected upload is one FAILED job and no message."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from common.domain.jobs import Job, JobState, upload_job_id
from common.gcp.job_store import FirestoreJobStore
from tests.integration.helpers import Tap, wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def speech(tmp_path: Path) -> Path:
    path = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "Budget review on Friday."], check=True)
    return path


@pytest.fixture
def tap(clean_stack: Any, unique: str) -> Iterator[Tap]:
    s = clean_stack.local.settings
    t = Tap(s.project, s.topics.transcription_requests, f"tap-up-{unique}")
    yield t
    t.delete()


@pytest.fixture
def store(clean_stack: Any) -> FirestoreJobStore:
    s = clean_stack.local.settings
    return FirestoreJobStore(s.project, s.collections.jobs)


def _gsutil(*args: str) -> str:
    return subprocess.run(["gsutil", *args], capture_output=True, text=True, check=True).stdout


def _job_for(store: FirestoreJobStore, uri: str) -> Job:
    bucket, name = uri.removeprefix("gs://").split("/", 1)
    generation = _gsutil("stat", uri).split("Generation:")[1].split()[0]
    job_id = upload_job_id(bucket, name, generation)

    def find() -> Job | None:
        try:
            return store.get(job_id)
        except Exception:
            return None

    return wait_for(find, what=f"the job for {uri}")


def test_non_audio_with_an_audio_name_fails_clearly(
    clean_stack: Any, tap: Tap, store: FirestoreJobStore, tmp_path: Path, unique: str
) -> None:
    fake = tmp_path / "minutes.mp3"
    fake.write_bytes(b"%PDF-1.7\n" + b"0" * 4000)  # a PDF wearing an .mp3 name
    uri = f"{clean_stack.local.settings.inbox_uri}{unique}/minutes.mp3"
    _gsutil("cp", str(fake), uri)
    job = _job_for(store, uri)
    assert job.state == JobState.FAILED
    assert job.error is not None and job.error.code == "not_audio"
    assert "PDF" in job.error.message and "minutes.mp3" in job.error.message
    assert tap.drain() == []


def test_metadata_options_reach_the_job_and_the_message(
    clean_stack: Any, tap: Tap, store: FirestoreJobStore, speech: Path, unique: str
) -> None:
    uri = f"{clean_stack.local.settings.inbox_uri}{unique}/lecture.wav"
    _gsutil(
        "-h",
        "x-goog-meta-priority:high",
        "-h",
        "x-goog-meta-language:de",
        "-h",
        "x-goog-meta-notes-template:lecture",
        "-h",
        "x-goog-meta-model:base",  # multilingual, so German is fine
        "-h",
        "x-goog-meta-owner:mallory",  # not trusted: gsutil uploads belong to upload_owner
        "cp",
        str(speech),
        uri,
    )
    job = _job_for(store, uri)
    assert (job.options.priority, job.options.language, job.options.model) == ("high", "de", "base")
    assert job.options.notes_template == "lecture"
    assert job.owner == clean_stack.local.settings.auth.upload_owner
    messages = tap.drain()
    assert [json.loads(m.data)["job_id"] for m in messages] == [job.job_id]
    assert messages[0].attributes["priority"] == "high"


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("x-goog-meta-priority:urgent", "bad_options"),
        ("x-goog-meta-language:English", "bad_options"),
        ("x-goog-meta-webhook-url:https://169.254.169.254/hook", "url_address_not_allowed"),
        ("x-goog-meta-webhook-url:ftp://example.com/hook", "url_scheme_not_allowed"),
    ],
)
def test_bad_metadata_options_fail_the_job(
    clean_stack: Any,
    tap: Tap,
    store: FirestoreJobStore,
    speech: Path,
    unique: str,
    header: str,
    code: str,
) -> None:
    uri = f"{clean_stack.local.settings.inbox_uri}{unique}/bad-options.wav"
    _gsutil("-h", header, "cp", str(speech), uri)
    job = _job_for(store, uri)
    assert job.state == JobState.FAILED
    assert job.error is not None and job.error.code == code
    assert header.split(":", 1)[0].removeprefix("x-goog-meta-") in job.error.message
    assert tap.drain() == []


def test_folder_placeholders_and_composite_parts_are_ignored(
    clean_stack: Any, tap: Tap, store: FirestoreJobStore, speech: Path, unique: str
) -> None:
    from google.cloud import storage  # type: ignore[attr-defined]

    s = clean_stack.local.settings
    bucket = storage.Client(project=s.project).bucket(s.buckets.inbox)
    prefix = s.buckets.inbox_prefix
    bucket.blob(f"{prefix}{unique}/folder/").upload_from_string(b"")
    bucket.blob(f"{prefix}{unique}_$folder$").upload_from_string(b"")
    part = f"{prefix}parallel_composite_uploads/{unique}/part_1_.gstmp"
    bucket.blob(part).upload_from_filename(str(speech))
    _gsutil("cp", str(speech), f"{s.inbox_uri}{unique}/real.wav")  # the one that counts
    assert len(tap.drain(settle_s=3)) == 1
    assert [j.source.uri for j in store.list().jobs] == [f"{s.inbox_uri}{unique}/real.wav"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_over_size_upload_fails_with_the_limit_in_the_message(
    clean_stack: Any, tap: Tap, store: FirestoreJobStore, speech: Path, unique: str, tmp_path: Path
) -> None:
    """A second on_upload process with a 1 kB limit, watching its own prefix, gets the real
    finalize event of a real upload (the stack's on_upload does not watch that prefix)."""
    from google.cloud import storage  # type: ignore[attr-defined]

    s = clean_stack.local.settings
    port = _free_port()
    env = {
        **os.environ,
        **clean_stack.local.environment(),
        "AUDIONOTES_LIMITS__MAX_UPLOAD_BYTES": "1000",
        "AUDIONOTES_BUCKETS__INBOX_PREFIX": "small/",
        "PYTHONPATH": str(REPO),
    }
    framework = str(Path(sys.executable).with_name("functions-framework"))
    with (tmp_path / "on_upload.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                framework,
                "--source=functions/main.py",
                "--target=on_upload",
                "--signature-type=cloudevent",
                f"--port={port}",
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            name = f"small/{unique}/long.wav"
            uri = f"gs://{s.buckets.inbox}/{name}"
            _gsutil("cp", str(speech), uri)
            blob = storage.Client(project=s.project).bucket(s.buckets.inbox).get_blob(name)
            event = {
                "bucket": s.buckets.inbox,
                "name": name,
                "generation": str(blob.generation),
                "size": str(blob.size),
                "contentType": blob.content_type,
                "metadata": {},
            }
            headers = {
                "Content-Type": "application/json",
                "ce-specversion": "1.0",
                "ce-id": f"evt-{unique}",
                "ce-type": "google.cloud.storage.object.v1.finalized",
                "ce-source": f"//storage.googleapis.com/projects/_/buckets/{s.buckets.inbox}",
                "ce-subject": f"objects/{name}",
            }

            def post() -> int | None:
                try:
                    url = f"http://127.0.0.1:{port}/"
                    return requests.post(url, json=event, headers=headers, timeout=30).status_code
                except requests.ConnectionError:
                    return None

            assert wait_for(post, what="the second on_upload") == 200
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    job = _job_for(store, uri)
    assert job.state == JobState.FAILED
    assert job.error is not None and job.error.code == "too_large"
    assert f"{speech.stat().st_size} bytes" in job.error.message and "1000" in job.error.message
    assert tap.drain() == []
