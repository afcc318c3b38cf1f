"""The API through outages and probes, in process against the real emulators: what the caller
is told and what is left behind agree.

- Pub/Sub does not answer: 503 with Retry-After, and no job (a retry must not pay twice).
- Firestore does not answer: 503 with Retry-After, within the call deadline (not a 500 after
  the client library's own 60 s of retries).
- A page token made from another subject's job id answers exactly like a made-up one.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from common.config.settings import get_settings
from common.domain.jobs import Job, JobSource, api_job_id
from common.gcp.job_store import FirestoreJobStore
from functions.api import build_api
from functions.api.http import create_app
from functions.bootstrap import build
from tests.integration.test_api import (  # noqa: F401 (fixtures)
    Client,
    _FlaskSession,
    _NoExecutions,
    blobs,
    speech_bytes,
    tokens,
    upload,
)


@pytest.fixture
def dead_port() -> Iterator[str]:
    """An address where nothing answers (bound, never accepting)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield f"127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def _client(token: str) -> Client:
    """The API in process, its clients built from the environment as it is now."""
    settings = get_settings()
    api = build_api(build(settings), canceller=_NoExecutions())
    return Client("http://in-process", token, _FlaskSession(create_app(settings, lambda: api)))


def test_a_pubsub_outage_answers_503_and_leaves_no_job(
    clean_stack: Any,
    tokens: dict[str, str],  # noqa: F811
    speech_bytes: bytes,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    dead_port: str,
) -> None:
    remote = Client(clean_stack.local.function_url("api"), tokens["alice"], requests.Session())
    audio_url = upload(remote, speech_bytes)  # through the running API: uploads work
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", dead_port)
    monkeypatch.setenv("AUDIONOTES_LIMITS__PUBLISH_TIMEOUT_S", "2")
    get_settings.cache_clear()
    client = _client(tokens["alice"])

    for key in ({"Idempotency-Key": "retry-me"}, {}):
        response = client.call("POST", "/v1/jobs", body={"audio_url": audio_url}, headers=key)
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "publish_failed"
        assert response.headers["Retry-After"] == "5"

    s = clean_stack.local.settings
    store = FirestoreJobStore(s.project, s.collections.jobs)
    assert store.list(limit=100).jobs == []  # nothing for the sweep to run (and bill) later
    # Pub/Sub is back: the retry with the same key makes the job, once.
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{clean_stack.local.ports.pubsub}")
    get_settings.cache_clear()
    again = _client(tokens["alice"]).call(
        "POST", "/v1/jobs", body={"audio_url": audio_url}, headers={"Idempotency-Key": "retry-me"}
    )
    assert again.status_code == 202 and again.json()["replayed"] is False
    assert [j.job_id for j in store.list(limit=100).jobs] == [again.json()["job_id"]]


def test_a_firestore_outage_answers_503_with_retry_after(
    clean_stack: Any,
    tokens: dict[str, str],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    dead_port: str,
) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", dead_port)
    get_settings.cache_clear()
    client = _client(tokens["alice"])

    for method, path in (("GET", "/v1/jobs"), ("GET", f"/v1/jobs/a-{'0' * 32}")):
        response = client.call(method, path)
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "store_unavailable"
        assert response.headers["Retry-After"] == "5"


def test_a_page_token_of_another_subjects_job_answers_like_a_made_up_one(
    clean_stack: Any,
    tokens: dict[str, str],  # noqa: F811
) -> None:
    s = clean_stack.local.settings
    store = FirestoreJobStore(s.project, s.collections.jobs)
    bob = Job.new(
        job_id=api_job_id("bob", None),
        owner="bob",
        source=JobSource(uri=f"gs://{s.buckets.inbox}/x.wav"),
        retention_days=1,
    )
    store.create(bob)
    remote = Client(clean_stack.local.function_url("api"), tokens["alice"], requests.Session())

    def token(job_id: str) -> str:
        return base64.urlsafe_b64encode(job_id.encode()).decode().rstrip("=")

    theirs = remote.call("GET", f"/v1/jobs?page_token={token(bob.job_id)}")
    made_up = remote.call("GET", f"/v1/jobs?page_token={token(api_job_id('nobody', None))}")
    assert theirs.status_code == made_up.status_code == 400
    assert theirs.json() == made_up.json()
    assert theirs.json()["error"]["code"] == "bad_page_token"
