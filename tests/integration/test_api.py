"""The ``api`` function against the local stack: every endpoint, and a table of bad inputs that
must each get a precise status and error code and leave no job, message or object behind.

Two ways in: the running functions-framework process (the local stack's settings, where http
and 127.0.0.1 are allowed for test servers), and the same handler in-process with the SSRF
guard as production configures it (https only, no private address at all), on the same real
emulators.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import flask
import jsonschema
import jwt
import pytest
import requests

from common.config.settings import Settings, get_settings
from common.domain.blobs import BlobRef
from common.domain.jobs import Job, JobSource, JobState, api_job_id
from common.domain.transcripts import Transcript, result_uri
from common.edge.auth import issue_hs256
from common.edge.ssrf import UrlPolicy
from common.gcp.gcs import GcsBlobStore
from common.gcp.job_store import FirestoreJobStore
from common.notes import cache as notes_cache
from functions.api import build_api
from functions.api.http import create_app
from functions.api.openapi import render
from functions.bootstrap import build
from tests.integration.helpers import Tap, wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
OPENAPI = json.loads((REPO / "functions" / "openapi.json").read_text())


class _NoExecutions:
    """The in-process API's canceller: its jobs never reach Cloud Run, so a call is a bug."""

    def cancel(self, execution: str) -> None:
        raise AssertionError(f"unexpected cancel of {execution}")


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def speech_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("audio") / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "Action items for Monday."], check=True)
    return path.read_bytes()


@dataclass
class AudioServer:
    """Test audio over plain HTTP on 127.0.0.1, with redirects into places it must not lead."""

    url: str
    hits: list[str]


@pytest.fixture(scope="module")
def audio_server(speech_bytes: bytes) -> Iterator[AudioServer]:
    hits: list[str] = []
    holder: dict[str, int] = {}

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes = b"", **headers: str) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k.replace("_", "-"), v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            hits.append(self.path)
            port = holder["port"]
            routes: dict[str, tuple[int, bytes, dict[str, str]]] = {
                "/speech.wav": (200, speech_bytes, {"Content_Type": "audio/wav"}),
                "/text.wav": (200, b"this is not audio at all\n" * 40, {}),
                "/empty.wav": (200, b"", {}),
                "/missing.wav": (404, b"nope", {}),
                "/to-metadata": (302, b"", {"Location": "http://169.254.169.254/latest/"}),
                "/to-private": (302, b"", {"Location": "http://10.0.0.1/a.wav"}),
                "/to-ipv6-loopback": (
                    307,
                    b"",
                    {"Location": f"http://[::1]:{port}/speech.wav"},
                ),
                "/to-ftp": (302, b"", {"Location": "ftp://example.com/a.wav"}),
                "/to-speech": (302, b"", {"Location": "/speech.wav"}),
            }
            status, body, headers = routes.get(self.path, (404, b"", {}))
            range_header = self.headers.get("Range")
            if status == 200 and range_header and body:
                start, _, end = range_header.removeprefix("bytes=").partition("-")
                first, last = int(start), min(int(end), len(body) - 1)
                headers = {**headers, "Content_Range": f"bytes {first}-{last}/{len(body)}"}
                status, body = 206, body[first : last + 1]
            self._send(status, body, **headers)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["port"] = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield AudioServer(f"http://127.0.0.1:{holder['port']}", hits)
    server.shutdown()


@dataclass
class Client:
    """A caller of one API (the running function or the in-process app) as one subject."""

    base: str
    token: str | None
    session: Any  # requests.Session or a Flask test client adapter

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        token: str | None = None,
    ) -> requests.Response:
        hdrs = dict(headers or {})
        bearer = token if token is not None else self.token
        if bearer:
            hdrs.setdefault("Authorization", f"Bearer {bearer}")
        if body is not None:
            raw = json.dumps(body).encode()
        if raw is not None:
            hdrs.setdefault("Content-Type", "application/json")
        return self.session.request(method, self.base + path, data=raw, headers=hdrs)

    def as_subject(self, token: str) -> Client:
        return Client(self.base, token, self.session)


class _FlaskSession:
    """requests-like access to an in-process Flask app."""

    def __init__(self, app: flask.Flask) -> None:
        self.client = app.test_client()

    def request(self, method: str, url: str, *, data: bytes | None, headers: dict[str, str]):  # type: ignore[no-untyped-def]
        path = url.removeprefix("http://in-process")
        result = self.client.open(path, method=method, data=data, headers=headers)
        response = requests.Response()
        response.status_code = result.status_code
        response._content = result.get_data()
        response.headers.update(dict(result.headers))
        return response


def _secret(stack: Any) -> str:
    secret = stack.local.settings.auth.jwt_secret
    assert secret is not None
    return str(secret.get_secret_value())


@pytest.fixture
def tokens(clean_stack: Any, unique: str) -> dict[str, str]:
    secret = _secret(clean_stack)
    return {who: issue_hs256(secret, f"{who}-{unique}") for who in ("alice", "bob")}


@pytest.fixture
def remote(clean_stack: Any, tokens: dict[str, str]) -> Client:
    return Client(clean_stack.local.function_url("api"), tokens["alice"], requests.Session())


def production_like(settings: Settings) -> Settings:
    """The local settings with the SSRF guard as production has it."""
    limits = settings.limits.model_copy(
        update={"allow_http_urls": False, "allowed_private_networks": []}
    )
    return settings.model_copy(update={"limits": limits})


# Names that resolve where an attacker wants them to; every other name resolves normally.
_EVIL_DNS = {
    "loopback.evil.test": ["127.0.0.1"],
    "metadata.evil.test": ["169.254.169.254"],
    "mixed.evil.test": ["93.184.216.34", "10.0.0.7"],
    "v6.evil.test": ["::1"],
}


def _resolver(host: str, port: int) -> list[str]:
    import socket

    if host in _EVIL_DNS:
        return _EVIL_DNS[host]
    return [str(i[4][0]) for i in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


@pytest.fixture
def in_process(clean_stack: Any, tokens: dict[str, str]) -> Client:
    settings = production_like(get_settings())
    assert settings.limits.allow_http_urls is False
    api = build_api(
        build(settings),
        canceller=_NoExecutions(),
        policy=UrlPolicy.from_settings(settings, resolver=_resolver),
    )
    app = create_app(settings, lambda: api)
    return Client("http://in-process", tokens["alice"], _FlaskSession(app))


@pytest.fixture
def tap(clean_stack: Any, unique: str) -> Iterator[Tap]:
    s = clean_stack.local.settings
    t = Tap(s.project, s.topics.transcription_requests, f"tap-api-{unique}")
    yield t
    t.delete()


@pytest.fixture
def store(clean_stack: Any) -> FirestoreJobStore:
    s = clean_stack.local.settings
    return FirestoreJobStore(s.project, s.collections.jobs)


@pytest.fixture
def blobs(clean_stack: Any) -> GcsBlobStore:
    return GcsBlobStore(clean_stack.local.settings.project)


def upload(client: Client, data: bytes, filename: str = "speech.wav") -> str:
    """The signed-URL flow: POST /v1/uploads, then PUT the bytes; returns the gs:// URI."""
    ticket = client.call(
        "POST",
        "/v1/uploads",
        body={"filename": filename, "content_type": "audio/wav", "size_bytes": len(data)},
    )
    assert ticket.status_code == 201, ticket.text
    conforms(ticket, "create_upload")
    body = ticket.json()
    put = requests.put(body["upload_url"], data=data, headers=body["headers"], timeout=30)
    assert put.status_code == 200, put.text
    return str(body["audio_url"])


def conforms(response: requests.Response, operation: str) -> None:
    """The response matches what openapi.json promises for this operation and status."""
    for item in OPENAPI["paths"].values():
        for op in item.values():
            if op["operationId"] != operation:
                continue
            promised = op["responses"].get(str(response.status_code))
            assert promised is not None, f"{operation} may not answer {response.status_code}"
            media = response.headers["Content-Type"].split(";")[0]
            assert media in promised["content"], f"{operation}: undocumented {media}"
            schema = promised["content"][media]["schema"]
            if media == "application/json":
                full = {**schema, "components": OPENAPI["components"]}
                jsonschema.validate(response.json(), full)
            return
    raise AssertionError(f"no operation {operation} in openapi.json")


def error_code(response: requests.Response) -> str:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"]
    return str(body["error"]["code"])


# --- the happy paths ----------------------------------------------------------------------------


def test_healthz_and_openapi_document(remote: Client, clean_stack: Any) -> None:
    health = remote.call("GET", "/healthz", token="")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    served = remote.call("GET", "/openapi.json", token="")
    assert served.status_code == 200
    # The document states what this deployment enforces (the local stack takes http URLs);
    # the file in the repo is the same document for the default settings.
    s = clean_stack.local.settings
    assert served.text == render(s.limits, sorted(s.transcription.models))
    assert (
        served.json() != OPENAPI and render() == (REPO / "functions" / "openapi.json").read_text()
    )
    url = served.json()["components"]["schemas"]["CreateJob"]["properties"]["audio_url"]
    assert "[hH][tT][tT][pP][sS]?://" in url["pattern"]
    assert (
        "[hH][tT][tT][pP][sS]?://"
        not in OPENAPI["components"]["schemas"]["CreateJob"]["properties"]["audio_url"]["pattern"]
    )


def test_submit_upload_get_list_and_idempotent_resubmission(
    remote: Client, tokens: dict[str, str], tap: Tap, store: FirestoreJobStore, speech_bytes: bytes
) -> None:
    audio = upload(remote, speech_bytes)
    body = {"audio_url": audio, "priority": "high", "language": "en", "notes_template": "lecture"}
    first = remote.call("POST", "/v1/jobs", body=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 202, first.text
    conforms(first, "create_job")
    job = first.json()
    assert job["replayed"] is False
    assert job["status_url"].endswith(f"/v1/jobs/{job['job_id']}")
    assert first.headers["Location"] == f"/v1/jobs/{job['job_id']}"
    assert job["options"]["priority"] == "high"
    assert job["source"] == {
        "uri": audio,
        "bytes": len(speech_bytes),
        "duration_s": None,
        "content_type": "audio/wav",
    }

    again = remote.call("POST", "/v1/jobs", body=body, headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 202
    assert (again.json()["job_id"], again.json()["replayed"]) == (job["job_id"], True)
    changed = remote.call(
        "POST", "/v1/jobs", body={**body, "priority": "low"}, headers={"Idempotency-Key": "k-1"}
    )
    assert (changed.status_code, error_code(changed)) == (422, "idempotency_key_reused")

    messages = tap.drain()
    assert [json.loads(m.data)["job_id"] for m in messages] == [job["job_id"]]
    assert messages[0].attributes["priority"] == "high"
    stored = store.get(job["job_id"])
    assert (
        stored.owner.startswith("alice-")
        and stored.coordination.request_message_id == messages[0].message_id
    )

    got = remote.call("GET", f"/v1/jobs/{job['job_id']}")
    assert got.status_code == 200
    conforms(got, "get_job")
    assert got.json()["job_id"] == job["job_id"]
    assert "QUEUED" in got.json()["state_times"]

    # A second job without a key is a new job; bob's job is not in alice's list.
    second = remote.call("POST", "/v1/jobs", body={"audio_url": audio})
    assert second.status_code == 202 and second.json()["job_id"] != job["job_id"]
    bob = remote.as_subject(tokens["bob"])
    bob_audio = upload(bob, speech_bytes, "bob.wav")
    assert bob.call("POST", "/v1/jobs", body={"audio_url": bob_audio}).status_code == 202

    seen: list[str] = []
    token = ""
    while True:
        page = remote.call("GET", f"/v1/jobs?limit=1{'&page_token=' + token if token else ''}")
        assert page.status_code == 200, page.text
        conforms(page, "list_jobs")
        seen += [j["job_id"] for j in page.json()["jobs"]]
        token = page.json()["next_page_token"] or ""
        if not token:
            break
    assert sorted(seen) == sorted([job["job_id"], second.json()["job_id"]])
    none_failed = remote.call("GET", "/v1/jobs?state=cancelled")
    assert none_failed.json()["jobs"] == []


def test_https_audio_url_through_the_guard(
    remote: Client, audio_server: AudioServer, tap: Tap, speech_bytes: bytes
) -> None:
    """Locally http://127.0.0.1 is allowed, so a fetchable URL (and a redirect to it) works."""
    direct = remote.call("POST", "/v1/jobs", body={"audio_url": f"{audio_server.url}/speech.wav"})
    assert direct.status_code == 202, direct.text
    assert direct.json()["source"]["bytes"] == len(speech_bytes)
    hop = remote.call("POST", "/v1/jobs", body={"audio_url": f"{audio_server.url}/to-speech"})
    assert hop.status_code == 202, hop.text
    assert len(tap.drain()) == 2


def _direct_job(store: FirestoreJobStore, owner: str, audio: str) -> str:
    """A job made straight in the store: no message, so the local pipeline leaves it alone
    and the test decides its state."""
    job = Job.new(
        job_id=api_job_id(owner, None),
        owner=owner,
        source=JobSource(uri=audio),
        retention_days=1,
    )
    store.create(job)
    return job.job_id


def _subject(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


def test_results_other_subjects_and_delete(
    remote: Client,
    tokens: dict[str, str],
    store: FirestoreJobStore,
    blobs: GcsBlobStore,
    clean_stack: Any,
    speech_bytes: bytes,
) -> None:
    s = clean_stack.local.settings
    audio = upload(remote, speech_bytes)
    job_id = _direct_job(store, _subject(tokens["alice"]), audio)

    for kind in ("transcript", "notes"):
        early = remote.call("GET", f"/v1/jobs/{job_id}/{kind}")
        assert (early.status_code, error_code(early)) == (409, f"{kind}_not_ready")
        conforms(early, f"get_{kind}")

    # What the transcribe job and the notes function write (the result contract).
    transcript = {
        "transcript.json": (
            b'{"job_id": "%s", "language": "en", "duration_s": 1.0, "model": "tiny.en", '
            b'"segments": []}' % job_id.encode(),
            "json",
        ),
        "transcript.txt": (b"Action items for Monday.\n", "txt"),
        "transcript.srt": (b"1\n00:00:00,000 --> 00:00:01,000\nAction items\n", "srt"),
        "transcript.vtt": (b"WEBVTT\n\n00:00.000 --> 00:01.000\nAction items\n", "vtt"),
    }
    notes = {
        "notes.json": (b'{"summary": "Action items for Monday."}', "json"),
        "notes.md": (b"# Notes\n\n- Action items for Monday\n", "md"),
    }
    for name, (data, _) in transcript.items():
        blobs.write_bytes(result_uri(s, job_id, name), data, content_type="text/plain")
    # The worker also caches the transcript under the audio's sha256 (DELETE must remove it).
    sha = "ab" * 32
    store.update(
        job_id,
        lambda j: j.model_copy(update={"source": j.source.model_copy(update={"sha256": sha})}),
    )
    cached = f"gs://{s.buckets.results}/{s.buckets.cache_prefix}{sha}/tiny.en/en/transcript.json"
    blobs.write_bytes(cached, transcript["transcript.json"][0], content_type="application/json")
    for state in (JobState.DISPATCHED, JobState.TRANSCRIBING, JobState.TRANSCRIBED):
        store.transition(job_id, state)
    for name, (data, fmt) in transcript.items():
        got = remote.call("GET", f"/v1/jobs/{job_id}/transcript?format={fmt}")
        assert (got.status_code, got.content) == (200, data), name
        conforms(got, "get_transcript")
    not_yet = remote.call("GET", f"/v1/jobs/{job_id}/notes?format=md")
    assert (not_yet.status_code, error_code(not_yet)) == (409, "notes_not_ready")

    for name, (data, _) in notes.items():
        blobs.write_bytes(result_uri(s, job_id, name), data, content_type="text/plain")
    store.transition(job_id, JobState.SUMMARIZING)
    store.transition(
        job_id, JobState.COMPLETED, outputs={"notes": result_uri(s, job_id, "notes.json")}
    )
    for name, (data, fmt) in notes.items():
        got = remote.call("GET", f"/v1/jobs/{job_id}/notes?format={fmt}")
        assert (got.status_code, got.content) == (200, data), name
        conforms(got, "get_notes")
    view = remote.call("GET", f"/v1/jobs/{job_id}").json()
    assert view["state"] == "COMPLETED" and view["progress"] == 1.0
    assert set(view["state_times"]) == {
        s.value for s in JobState if s.value not in ("FAILED", "CANCELLED")
    }
    assert view["outputs"] == ["notes"]

    bob = remote.as_subject(tokens["bob"])
    for method, path in [
        ("GET", f"/v1/jobs/{job_id}"),
        ("GET", f"/v1/jobs/{job_id}/transcript?format=srt"),
        ("GET", f"/v1/jobs/{job_id}/notes?format=md"),
        ("DELETE", f"/v1/jobs/{job_id}"),
    ]:
        denied = bob.call(method, path)
        assert (denied.status_code, error_code(denied)) == (404, "job_not_found"), path
    assert blobs.stat(audio) is not None  # bob's DELETE touched nothing
    assert bob.call("GET", "/v1/jobs").json()["jobs"] == []
    denied = bob.call("GET", f"/v1/jobs/{job_id}/audio")
    assert (denied.status_code, error_code(denied)) == (404, "job_not_found")

    # The owner's player: a signed GET of the stored audio, which works without a token.
    link = remote.call("GET", f"/v1/jobs/{job_id}/audio")
    assert link.status_code == 200, link.text
    conforms(link, "get_audio")
    played = requests.get(link.json()["url"], headers={"Range": "bytes=0-11"}, timeout=30)
    assert played.status_code in (200, 206) and played.content[:12] == speech_bytes[:12]
    assert link.json()["signed"] is True and link.json()["expires_at"]

    # The owner's notes cache, under the key of every cache version there has been.
    owner = store.get(job_id)
    made_from = Transcript.model_validate_json(transcript["transcript.json"][0])
    cached_notes = [
        notes_cache.cache_uri(
            s, owner.owner, notes_cache.cache_key(made_from, owner.options, s, version=v)
        )
        for v in notes_cache.all_versions
    ]
    for uri in cached_notes:
        blobs.write_bytes(uri, notes["notes.json"][0], content_type="application/json")

    deleted = remote.call("DELETE", f"/v1/jobs/{job_id}")
    assert deleted.status_code == 200, deleted.text
    conforms(deleted, "delete_job")
    assert deleted.json() == {
        "job_id": job_id,
        "state": "COMPLETED",  # a finished job stays finished; only its data goes
        "cancelled": False,
        # results, audio, cached transcript, cached notes
        "deleted_objects": len(transcript) + len(notes) + 2 + len(cached_notes),
    }
    assert blobs.stat(audio) is None
    assert blobs.stat(cached) is None
    assert all(blobs.stat(uri) is None for uri in cached_notes)
    assert list(blobs.list(result_uri(s, job_id, ""))) == []
    assert store.get(job_id).outputs == {}
    again = remote.call("DELETE", f"/v1/jobs/{job_id}")
    assert again.status_code == 200
    assert (again.json()["cancelled"], again.json()["deleted_objects"]) == (False, 0)
    gone = remote.call("GET", f"/v1/jobs/{job_id}/notes?format=md")
    assert (gone.status_code, error_code(gone)) == (404, "result_not_found")
    no_audio = remote.call("GET", f"/v1/jobs/{job_id}/audio")
    assert (no_audio.status_code, error_code(no_audio)) == (404, "audio_not_found")
    conforms(no_audio, "get_audio")


def test_the_upload_owner_subject_is_reserved(clean_stack: Any, unique: str) -> None:
    """gsutil uploads belong to Auth.upload_owner; a token naming it must not read them."""
    s = clean_stack.local.settings
    token = issue_hs256(_secret(clean_stack), s.auth.upload_owner)
    client = Client(clean_stack.local.function_url("api"), token, requests.Session())
    for method, path in [("GET", "/v1/jobs"), ("GET", f"/v1/jobs/u-{unique}")]:
        refused = client.call(method, path)
        assert (refused.status_code, error_code(refused)) == (403, "reserved_subject"), path


def test_delete_cancels_a_running_job_and_its_cloud_run_execution(
    remote: Client,
    tokens: dict[str, str],
    store: FirestoreJobStore,
    blobs: GcsBlobStore,
    clean_stack: Any,
    speech_bytes: bytes,
    unique: str,
) -> None:
    import sys

    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import run_v2

    s = clean_stack.local.settings
    options = ClientOptions(api_endpoint=s.run_jobs.api_endpoint)
    creds = AnonymousCredentials()  # type: ignore[no-untyped-call]
    jobs = run_v2.JobsClient(transport="rest", client_options=options, credentials=creds)
    executions = run_v2.ExecutionsClient(
        transport="rest", client_options=options, credentials=creds
    )
    parent = f"projects/{s.project}/locations/{s.region}"
    sleeper = run_v2.Job(
        template=run_v2.ExecutionTemplate(
            task_count=1,
            template=run_v2.TaskTemplate(
                containers=[
                    run_v2.Container(
                        image="local",
                        command=[sys.executable, "-c", "import time; time.sleep(300)"],
                    )
                ],
                max_retries=0,
                timeout="600s",
            ),
        )
    )
    jobs.create_job(parent=parent, job=sleeper, job_id=f"sleep-{unique}")
    execution = str(jobs.run_job(name=f"{parent}/jobs/sleep-{unique}").metadata.name)

    audio = upload(remote, speech_bytes)
    job_id = _direct_job(store, _subject(tokens["alice"]), audio)
    store.transition(job_id, JobState.DISPATCHED, execution=execution)
    store.transition(job_id, JobState.TRANSCRIBING)
    blobs.write_bytes(result_uri(s, job_id, "chunks/0.json"), b"{}", content_type="text/plain")

    deleted = remote.call("DELETE", f"/v1/jobs/{job_id}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {
        "job_id": job_id,
        "state": "CANCELLED",
        "cancelled": True,
        "deleted_objects": 2,
    }
    job = store.get(job_id)
    assert job.error is not None and job.error.code == "cancelled"
    done = wait_for(
        lambda: (e := executions.get_execution(name=execution)).completion_time and e,
        what="the cancelled execution",
    )
    assert done.cancelled_count == 1
    again = remote.call("DELETE", f"/v1/jobs/{job_id}")
    assert again.json()["state"] == "CANCELLED" and again.json()["cancelled"] is False


# --- the bad inputs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    name: str
    status: int
    code: str
    method: str = "POST"
    path: str = "/v1/jobs"
    body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] | None = None
    token: str | None = None  # "" = no token; a template name below, or None = alice's
    where: str = "both"  # "both", "remote" (local settings) or "in_process" (production guard)


def _tokens(secret: str, subject: str) -> dict[str, str]:
    now = time.time()
    from cryptography.hazmat.primitives.asymmetric import rsa

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "expired": issue_hs256(secret, subject, ttl_s=60, now=now - 3600),
        "forged": issue_hs256("not-the-secret-" + "x" * 32, subject),
        "alg_none": jwt.encode({"sub": subject, "exp": int(now) + 600}, None, algorithm="none"),
        "hs512": jwt.encode({"sub": subject, "exp": int(now) + 600}, secret, algorithm="HS512"),
        "rs256": jwt.encode({"sub": subject, "exp": int(now) + 600}, rsa_key, algorithm="RS256"),
        "no_sub": jwt.encode({"exp": int(now) + 600}, secret, algorithm="HS256"),
        "no_exp": jwt.encode({"sub": subject}, secret, algorithm="HS256"),
        "garbage": "not.a.jwt",
    }


A = "audio_url"
BAD_INPUTS: list[Bad] = [
    # The body
    Bad("malformed JSON", 400, "malformed_json", raw=b'{"audio_url": '),
    Bad("empty body", 400, "malformed_json", raw=b""),
    Bad("unknown field", 422, "unknown_field", body={A: "https://example.com/a.wav", "x": 1}),
    Bad("missing audio_url", 422, "missing_field", body={"priority": "high"}),
    Bad("audio_url wrong type", 422, "wrong_type", body={A: 42}),
    Bad("priority wrong type", 422, "invalid_value", body={A: "gs://b/a.wav", "priority": 1}),
    Bad("priority bad value", 422, "invalid_value", body={A: "gs://b/a.wav", "priority": "asap"}),
    Bad("language bad value", 422, "invalid_value", body={A: "gs://b/a.wav", "language": "EN!"}),
    Bad("body is a list", 422, "wrong_type", body=[{A: "gs://b/a.wav"}]),
    Bad("huge body", 413, "body_too_large", body={A: "https://example.com/" + "a" * 70_000}),
    Bad(
        "not JSON",
        415,
        "unsupported_media_type",
        raw=b"audio_url=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ),
    Bad(
        "bad idempotency key",
        400,
        "bad_idempotency_key",
        body={A: "gs://b/a.wav"},
        headers={"Idempotency-Key": "has spaces"},
    ),
    # Schemes and URL shapes
    Bad("ftp scheme", 422, "url_scheme_not_allowed", body={A: "ftp://example.com/a.wav"}),
    Bad("file scheme", 422, "url_scheme_not_allowed", body={A: "file:///etc/passwd"}),
    Bad("gopher scheme", 422, "url_scheme_not_allowed", body={A: "gopher://example.com:70/"}),
    Bad("no scheme", 422, "url_scheme_not_allowed", body={A: "example.com/a.wav"}),
    Bad(
        "http in production",
        422,
        "url_scheme_not_allowed",
        body={A: "http://example.com/a.wav"},
        where="in_process",
    ),
    Bad("userinfo", 422, "url_userinfo_not_allowed", body={A: "https://u:p@example.com/a.wav"}),
    Bad(
        "userinfo, user only",
        422,
        "url_userinfo_not_allowed",
        body={A: "https://admin@example.com/a.wav"},
    ),
    Bad("no host", 422, "url_host_missing", body={A: "https:///a.wav"}),
    # Addresses
    Bad(
        "loopback v4",
        422,
        "url_address_not_allowed",
        body={A: "https://127.0.0.1/a.wav"},
        where="in_process",
    ),
    Bad(
        "loopback, other /8 address",
        422,
        "url_address_not_allowed",
        body={A: "https://127.0.0.2/a.wav"},
    ),
    Bad(
        "metadata server",
        422,
        "url_address_not_allowed",
        body={A: "https://169.254.169.254/computeMetadata/v1/"},
    ),
    Bad(
        "metadata, decimal form",
        422,
        "url_address_not_allowed",
        body={A: "https://2852039166/latest/"},
    ),
    Bad("private 10/8", 422, "url_address_not_allowed", body={A: "https://10.0.0.1/a.wav"}),
    Bad("private 172.16/12", 422, "url_address_not_allowed", body={A: "https://172.16.5.4/"}),
    Bad("private 192.168/16", 422, "url_address_not_allowed", body={A: "https://192.168.1.1/"}),
    Bad("CGNAT", 422, "url_address_not_allowed", body={A: "https://100.64.0.1/a.wav"}),
    Bad("multicast", 422, "url_address_not_allowed", body={A: "https://224.0.0.251/a.wav"}),
    Bad("reserved", 422, "url_address_not_allowed", body={A: "https://240.0.0.1/a.wav"}),
    Bad("unspecified", 422, "url_address_not_allowed", body={A: "https://0.0.0.0/a.wav"}),
    Bad("loopback v6", 422, "url_address_not_allowed", body={A: "https://[::1]/a.wav"}),
    Bad("link-local v6", 422, "url_address_not_allowed", body={A: "https://[fe80::1]/a.wav"}),
    Bad("unique-local v6", 422, "url_address_not_allowed", body={A: "https://[fd00::1]/a.wav"}),
    Bad(
        "v4-mapped metadata",
        422,
        "url_address_not_allowed",
        body={A: "https://[::ffff:169.254.169.254]/"},
    ),
    Bad(
        "localhost",
        422,
        "url_address_not_allowed",
        body={A: "https://localhost/a.wav"},
        where="in_process",
    ),
    Bad(
        "name resolving to loopback",
        422,
        "url_address_not_allowed",
        body={A: "https://loopback.evil.test/a.wav"},
        where="in_process",
    ),
    Bad(
        "name resolving to metadata",
        422,
        "url_address_not_allowed",
        body={A: "https://metadata.evil.test/a.wav"},
        where="in_process",
    ),
    Bad(
        "name resolving public and private",
        422,
        "url_address_not_allowed",
        body={A: "https://mixed.evil.test/a.wav"},
        where="in_process",
    ),
    Bad(
        "name resolving to ::1",
        422,
        "url_address_not_allowed",
        body={A: "https://v6.evil.test/a.wav"},
        where="in_process",
    ),
    Bad("unresolvable name", 422, "url_unresolvable", body={A: "https://no-such-host.invalid/a"}),
    # Redirects (the test server runs on 127.0.0.1, reachable only with local settings)
    Bad(
        "redirect to metadata",
        422,
        "url_address_not_allowed",
        body={A: "{server}/to-metadata"},
        where="remote",
    ),
    Bad(
        "redirect to private",
        422,
        "url_address_not_allowed",
        body={A: "{server}/to-private"},
        where="remote",
    ),
    Bad(
        "redirect to ::1",
        422,
        "url_address_not_allowed",
        body={A: "{server}/to-ipv6-loopback"},
        where="remote",
    ),
    Bad(
        "redirect to ftp",
        422,
        "url_scheme_not_allowed",
        body={A: "{server}/to-ftp"},
        where="remote",
    ),
    Bad(
        "source answers 404",
        422,
        "source_unreachable",
        body={A: "{server}/missing.wav"},
        where="remote",
    ),
    Bad("source is text", 415, "not_audio", body={A: "{server}/text.wav"}, where="remote"),
    Bad("source is empty", 422, "empty_audio", body={A: "{server}/empty.wav"}, where="remote"),
    # Webhooks
    Bad(
        "webhook to metadata",
        422,
        "url_address_not_allowed",
        body={A: "gs://b/a.wav", "webhook_url": "https://169.254.169.254/hook"},
    ),
    Bad(
        "webhook over http in production",
        422,
        "url_scheme_not_allowed",
        body={A: "gs://b/a.wav", "webhook_url": "http://example.com/hook"},
        where="in_process",
    ),
    Bad(
        "webhook with userinfo",
        422,
        "url_userinfo_not_allowed",
        body={A: "gs://b/a.wav", "webhook_url": "https://a:b@example.com/hook"},
    ),
    # gs:// sources
    Bad("gs without object", 422, "bad_uri", body={A: "gs://bucket-only"}),
    Bad("gs, someone else's bucket", 403, "source_forbidden", body={A: "gs://other-bkt/a.wav"}),
    Bad(
        "gs, our results bucket",
        403,
        "source_forbidden",
        body={A: "gs://{results}/jobs/x/transcript.json"},
    ),
    Bad(
        "gs, inbox outside own folder",
        403,
        "source_forbidden",
        body={A: "gs://{inbox}/uploads/someone.wav"},
    ),
    Bad("gs, bob's folder", 403, "source_forbidden", body={A: "{bob_folder}a.wav"}),
    Bad("gs, own folder, missing", 422, "source_not_found", body={A: "{own_folder}none.wav"}),
    Bad("gs, own folder, text", 415, "not_audio", body={A: "{own_folder}notes.txt"}),
    Bad("gs, own folder, empty", 422, "empty_audio", body={A: "{own_folder}empty.wav"}),
    # Tokens
    Bad("no token", 401, "missing_token", body={A: "gs://b/a.wav"}, token=""),
    Bad(
        "basic auth",
        401,
        "missing_token",
        body={A: "gs://b/a.wav"},
        headers={"Authorization": "Basic YWxpY2U6cHc="},
    ),
    Bad("expired token", 401, "token_expired", body={A: "gs://b/a.wav"}, token="expired"),
    Bad("forged token", 401, "bad_signature", body={A: "gs://b/a.wav"}, token="forged"),
    Bad("alg none", 401, "unsupported_alg", body={A: "gs://b/a.wav"}, token="alg_none"),
    Bad("alg HS512", 401, "unsupported_alg", body={A: "gs://b/a.wav"}, token="hs512"),
    Bad("RS256 without a JWKS", 401, "unsupported_alg", body={A: "gs://b/a.wav"}, token="rs256"),
    Bad("token without sub", 401, "invalid_token", body={A: "gs://b/a.wav"}, token="no_sub"),
    Bad("token without exp", 401, "invalid_token", body={A: "gs://b/a.wav"}, token="no_exp"),
    Bad("garbage token", 401, "invalid_token", body={A: "gs://b/a.wav"}, token="garbage"),
    Bad("list, no token", 401, "missing_token", method="GET", path="/v1/jobs", token=""),
    Bad(
        "upload, forged token",
        401,
        "bad_signature",
        path="/v1/uploads",
        body={"filename": "a.wav"},
        token="forged",
    ),
    # Queries, routes, other endpoints
    Bad("limit 0", 400, "bad_limit", method="GET", path="/v1/jobs?limit=0"),
    Bad("limit not a number", 400, "bad_limit", method="GET", path="/v1/jobs?limit=ten"),
    Bad("limit too big", 400, "bad_limit", method="GET", path="/v1/jobs?limit=101"),
    Bad("bad state", 400, "bad_state", method="GET", path="/v1/jobs?state=DONE"),
    Bad("bad page token", 400, "bad_page_token", method="GET", path="/v1/jobs?page_token=%21%21"),
    Bad("unknown query parameter", 400, "unknown_parameter", method="GET", path="/v1/jobs?x=1"),
    Bad("unknown job", 404, "job_not_found", method="GET", path="/v1/jobs/a-0000"),
    Bad(
        "job id with odd characters",
        404,
        "job_not_found",
        method="GET",
        path="/v1/jobs/x%20y",
    ),
    Bad("delete unknown job", 404, "job_not_found", method="DELETE", path="/v1/jobs/a-0000"),
    Bad(
        "bad transcript format",
        400,
        "bad_format",
        method="GET",
        path=f"/v1/jobs/a-{0:032d}/transcript?format=pdf",
    ),
    Bad(
        "bad notes format",
        400,
        "bad_format",
        method="GET",
        path=f"/v1/jobs/a-{0:032d}/notes?format=srt",
    ),
    Bad("no such route", 404, "not_found", method="GET", path="/v2/jobs"),
    # From the outside test of the whole stack (issue 10)
    Bad("empty webhook url", 422, "invalid_value", body={A: "gs://b/a.wav", "webhook_url": ""}),
    Bad(
        "webhook url with a space",
        422,
        "url_malformed",
        body={A: "gs://b/a.wav", "webhook_url": "https://exa mple.com/hook"},
    ),
    Bad("reserved job id", 404, "job_not_found", method="GET", path="/v1/jobs/__main__"),
    Bad(
        "reserved job id, transcript",
        404,
        "job_not_found",
        method="GET",
        path="/v1/jobs/__main__/transcript",
    ),
    Bad("reserved job id, notes", 404, "job_not_found", method="GET", path="/v1/jobs/__x__/notes"),
    Bad("reserved job id, delete", 404, "job_not_found", method="DELETE", path="/v1/jobs/__x__"),
    Bad(
        "reserved job id as page token",
        400,
        "bad_page_token",
        method="GET",
        path="/v1/jobs?page_token=X19tYWluX18",
    ),
    Bad("empty state", 400, "bad_state", method="GET", path="/v1/jobs?state="),
    Bad("empty limit", 400, "bad_limit", method="GET", path="/v1/jobs?limit="),
    Bad("empty page token", 400, "bad_page_token", method="GET", path="/v1/jobs?page_token="),
    Bad(
        "control character in the path",
        404,
        "not_found",
        method="GET",
        path="/v1/jobs/%0a",
        where="remote",  # functions-framework's own routing answers it
    ),
    Bad(
        "gs, out of bob's folder with ..",
        422,
        "bad_object_name",
        body={A: "{bob_folder}../../uploads/secret/x.wav"},
    ),
    Bad("gs, own folder with ..", 422, "bad_object_name", body={A: "{own_folder}../escape.wav"}),
    Bad(
        "gs, encoded ..",
        422,
        "bad_object_name",
        body={A: "{own_folder}%2e%2e/%2e%2e/uploads/x.wav"},
    ),
    Bad("gs, empty segment", 422, "bad_object_name", body={A: "{own_folder}/x.wav"}),
    Bad("wrong method", 405, "method_not_allowed", method="PUT", path="/v1/jobs", body={}),
    Bad(
        "upload too large",
        413,
        "audio_too_large",
        path="/v1/uploads",
        body={"filename": "a.wav", "size_bytes": 10**12},
    ),
    Bad(
        "upload not audio",
        422,
        "invalid_value",
        path="/v1/uploads",
        body={"filename": "a.txt", "content_type": "text/plain"},
    ),
    Bad("upload unusable name", 422, "bad_filename", path="/v1/uploads", body={"filename": "/.."}),
    Bad(
        "upload unknown field",
        422,
        "unknown_field",
        path="/v1/uploads",
        body={"filename": "a.wav", "owner": "bob"},
    ),
]


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**names) if "{" in value else value
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    return value


def _objects(blobs: GcsBlobStore, s: Settings) -> set[str]:
    client = blobs.client
    return {
        f"{b}/{o.name}" for b in (s.buckets.inbox, s.buckets.results) for o in client.list_blobs(b)
    }


def _bad_input_cases() -> list[Any]:
    """One test per case and way in, named for selection (``-k private_10_8``)."""
    return [
        pytest.param(target, case, id=f"{target}-{re.sub(r'[^A-Za-z0-9]+', '_', case.name)}")
        for target in ("remote", "in_process")
        for case in BAD_INPUTS
        if case.where in ("both", target)
    ]


@pytest.mark.parametrize(("target", "case"), _bad_input_cases())
def test_bad_inputs_get_precise_errors_and_leave_nothing_behind(
    target: str,
    case: Bad,
    request: pytest.FixtureRequest,
    clean_stack: Any,
    tokens: dict[str, str],
    tap: Tap,
    store: FirestoreJobStore,
    blobs: GcsBlobStore,
    audio_server: AudioServer,
) -> None:
    client: Client = request.getfixturevalue(target)
    s = clean_stack.local.settings
    from common.domain.owners import subject_folder

    def folder(subject: str) -> str:
        return f"gs://{s.buckets.inbox}/{s.auth.api_upload_prefix}{subject_folder(subject)}/"

    alice = jwt.decode(tokens["alice"], options={"verify_signature": False})["sub"]
    bob = jwt.decode(tokens["bob"], options={"verify_signature": False})["sub"]
    own = folder(alice)
    blobs.write_bytes(own + "notes.txt", b"meeting notes, not audio\n", content_type="audio/wav")
    blobs.write_bytes(own + "empty.wav", b"", content_type="audio/wav")
    names = {
        "server": audio_server.url,
        "results": s.buckets.results,
        "inbox": s.buckets.inbox,
        "own_folder": own,
        "bob_folder": folder(bob),
    }
    token = (
        case.token if case.token in ("", None) else _tokens(_secret(clean_stack), alice)[case.token]
    )
    body = _fill(case.body, names)
    before = _objects(blobs, s)

    response = client.call(
        case.method,
        case.path,
        body=body,
        raw=case.raw,
        headers=case.headers,
        token=token,
    )

    assert (response.status_code, error_code(response)) == (case.status, case.code), response.text
    if case.status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    if case.status == 405:
        assert "POST" in response.headers["Allow"]
    assert store.list(limit=100).jobs == []
    # The API publishes before it answers: whatever it published is in the tap already.
    assert tap.drain(settle_s=0.2) == []
    # The caller's own upload that this case names (not audio, empty) is deleted, nothing else.
    named = body.get(A) if isinstance(body, dict) else None
    refused = {
        f"{s.buckets.inbox}/{BlobRef.parse(own + n).name}"
        for n in ("notes.txt", "empty.wav")
        if named == own + n
    }
    assert _objects(blobs, s) == before - refused


def test_wrong_method_and_unknown_route_on_every_documented_path(remote: Client) -> None:
    for path, item in OPENAPI["paths"].items():
        concrete = path.replace("{job_id}", "a-0000")
        unused = {"get", "post", "delete", "put", "patch"} - set(item)
        for method in sorted(unused):
            response = remote.call(method.upper(), concrete)
            assert response.status_code == 405, (method, path)
            allowed = set(response.headers["Allow"].replace(" ", "").split(","))
            assert allowed >= {m.upper() for m in item}, (method, path)
