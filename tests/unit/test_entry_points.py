"""The deployed entry points as functions-framework serves them, in process, on the fakes:
golden request bodies from tests/data (the storage CloudEvent Eventarc sends, Pub/Sub push
envelopes, Cloud Scheduler's body) go in over HTTP. A message no retry can fix is acknowledged
(2xx); a transient failure answers 500, so the platform delivers it again."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import functions_framework
import pytest
from flask.testing import FlaskClient
from functions_framework import _function_registry
from pydantic import SecretStr

import common.config.settings
import functions.api
import functions.bootstrap
import functions.dispatch
import functions.notes
from common.domain.errors import StoreUnavailable
from common.domain.jobs import Job, JobState, upload_job_id, utcnow
from common.edge.auth import issue_hs256
from functions.api import build_api
from functions.bootstrap import Services
from functions.dispatch import DispatchServices
from functions.notes import NotesServices
from tests.conftest import DATA, REPO_ROOT
from tests.fakes import (
    FakeLauncher,
    FakeProber,
    MemoryBlobStore,
    MemoryJobStore,
    RecordingPublisher,
    new_job,
    settings,
    wav_bytes,
)

MAIN = str(REPO_ROOT / "functions" / "main.py")
SIGNATURES = {
    "on_upload": "cloudevent",
    "api": "http",
    "dispatch": "cloudevent",
    "notes": "cloudevent",
    "dead_letters": "cloudevent",
    "sweep": "http",
}
JOB_ID = "u-0123456789abcdef0123456789abcdef"  # the job the golden Pub/Sub messages name
SECRET = "entry-point-tests-" + "s" * 32


def golden(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def serve(target: str) -> FlaskClient:
    """The function as the platform runs it (main.py is loaded afresh, so it binds the
    composition root patched below)."""
    app = functions_framework.create_app(
        target=target, source=MAIN, signature_type=SIGNATURES[target]
    )
    return app.test_client()


def push(target: str, envelope: str) -> int:
    """A Pub/Sub push delivery of the golden envelope; returns the HTTP status."""
    return serve(target).post("/", json=golden(envelope)).status_code


@dataclass
class World:
    jobs: MemoryJobStore
    blobs: MemoryBlobStore
    publisher: RecordingPublisher
    launcher: FakeLauncher

    def has(self, state: JobState, **update: object) -> Job:
        job = new_job(JOB_ID).model_copy(update={"state": state, **update})
        self.jobs.jobs[job.job_id] = job
        return job

    def store_down(self, monkeypatch: pytest.MonkeyPatch, method: str = "get") -> None:
        def unavailable(*args: object, **kwargs: object) -> Any:
            raise StoreUnavailable("Firestore did not answer within the deadline")

        monkeypatch.setattr(self.jobs, method, unavailable)


class _NoLimits:
    def hit(self, keys: list[str]) -> None:
        pass


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    """The composition root and each handler's deps builder, patched to return fakes."""
    s = settings()
    s = s.model_copy(
        update={
            # The bucket the golden storage event names.
            "buckets": s.buckets.model_copy(update={"inbox": "audionotes-local-inbox"}),
            "auth": s.auth.model_copy(update={"jwt_secret": SecretStr(SECRET)}),
        }
    )
    jobs, blobs, publisher, launcher = (
        MemoryJobStore(),
        MemoryBlobStore(),
        RecordingPublisher(),
        FakeLauncher(),
    )
    svc = Services(settings=s, jobs=jobs, publisher=publisher, blobs=blobs)
    api = dataclasses.replace(build_api(svc, canceller=launcher), limiter=_NoLimits())
    provide: dict[tuple[Any, str], Callable[[], object]] = {
        (functions.bootstrap, "services"): lambda: svc,
        # The API's app reads its limits and proxy hops from the settings of the process.
        (common.config.settings, "get_settings"): lambda: s,
        (functions.api, "api_services"): lambda: api,
        (functions.dispatch, "dispatch_services"): lambda: DispatchServices(launcher, FakeProber()),
        # The notes engine is never reached here: no job below is TRANSCRIBED.
        (functions.notes, "notes_services"): lambda: NotesServices(svc, None, None),  # type: ignore[arg-type]
    }
    for (module, name), builder in provide.items():
        monkeypatch.setattr(module, name, builder)
    return World(jobs, blobs, publisher, launcher)


def test_every_entry_point_is_tested_here_with_its_signature() -> None:
    import functions.main as main

    registered = {
        name: kind
        for name, kind in _function_registry.REGISTRY_MAP.items()
        if callable(getattr(main, name, None))
    }
    assert registered == SIGNATURES


# --- on_upload: a storage CloudEvent (binary mode, as Eventarc sends it) -------------------------


def _storage_event(**data: object) -> tuple[dict[str, str], str]:
    event = golden("gcs-finalized-cloudevent.json")
    return event["headers"], json.dumps({**event["data"], **data})


def test_on_upload_turns_the_golden_event_into_a_queued_published_job(world: World) -> None:
    headers, body = _storage_event()
    uri = "gs://audionotes-local-inbox/uploads/a.wav"
    world.blobs.write_bytes(uri, wav_bytes(), content_type="audio/wav")
    world.blobs.generations[uri] = 1795496552016747  # the generation the event names

    response = serve("on_upload").post("/", headers=headers, data=body)

    assert response.status_code == 200
    job = world.jobs.get(
        upload_job_id("audionotes-local-inbox", "uploads/a.wav", "1795496552016747")
    )
    assert (job.state, job.source.uri, job.source.bytes) == (
        JobState.QUEUED,
        "gs://audionotes-local-inbox/uploads/a.wav",
        5000,
    )
    assert world.publisher.topics == ["transcription-requests"]


def test_on_upload_acknowledges_an_event_it_cannot_read(world: World) -> None:
    headers, body = _storage_event(generation=None, name=["not", "a", "name"])

    response = serve("on_upload").post("/", headers=headers, data=body)

    assert response.status_code == 200
    assert world.jobs.jobs == {} and world.publisher.published == []


def test_on_upload_answers_500_while_the_job_store_is_out(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.store_down(monkeypatch)
    headers, body = _storage_event()
    world.blobs.write_bytes(
        "gs://audionotes-local-inbox/uploads/a.wav", wav_bytes(), content_type="audio/wav"
    )

    assert serve("on_upload").post("/", headers=headers, data=body).status_code == 500
    assert world.publisher.published == []


# --- dispatch, notes, dead_letters: Pub/Sub push envelopes ---------------------------------------


def test_dispatch_launches_the_job_the_golden_request_names(world: World) -> None:
    world.has(JobState.QUEUED)

    assert push("dispatch", "pubsub-push-transcription-request.json") == 200

    job = world.jobs.get(JOB_ID)
    assert job.state == JobState.DISPATCHED
    assert job.execution is not None and job.execution in world.launcher.alive
    assert len(world.launcher.launches) == 1


def test_notes_redelivers_a_message_for_a_job_not_transcribed_yet(world: World) -> None:
    queued = world.has(JobState.QUEUED)

    assert (
        push("notes", "pubsub-push-transcript-ready.json") == 500
    )  # TranscriptNotReady: transient

    assert world.jobs.get(JOB_ID) == queued


def test_notes_acknowledges_a_repeat_for_a_completed_job(world: World) -> None:
    done = world.has(JobState.COMPLETED)

    assert push("notes", "pubsub-push-transcript-ready.json") == 200

    assert world.jobs.get(JOB_ID) == done


def test_dead_letters_fail_the_job_the_golden_dead_letter_names(world: World) -> None:
    world.has(JobState.QUEUED)

    assert push("dead_letters", "pubsub-push-dead-letter.json") == 200

    job = world.jobs.get(JOB_ID)
    assert job.state == JobState.FAILED and job.error is not None
    assert job.error.code == "dead_lettered"
    assert "message 9003 after 5 delivery attempts on subscription dispatch" in job.error.message


@pytest.mark.parametrize("target", ["dispatch", "notes", "dead_letters"])
def test_a_poison_message_is_acknowledged_and_changes_nothing(world: World, target: str) -> None:
    queued = world.has(JobState.QUEUED)

    assert push(target, "pubsub-push-poison.json") == 200

    assert world.jobs.jobs == {JOB_ID: queued}
    assert world.launcher.launches == [] and world.publisher.published == []


@pytest.mark.parametrize(
    ("target", "envelope"),
    [
        ("dispatch", "pubsub-push-transcription-request.json"),
        ("notes", "pubsub-push-transcript-ready.json"),
        ("dead_letters", "pubsub-push-dead-letter.json"),
    ],
)
def test_pubsub_entry_points_answer_500_while_the_job_store_is_out(
    world: World, monkeypatch: pytest.MonkeyPatch, target: str, envelope: str
) -> None:
    world.has(JobState.QUEUED)
    world.store_down(monkeypatch)

    assert push(target, envelope) == 500
    assert world.launcher.launches == []


# --- sweep: Cloud Scheduler's POST -------------------------------------------------------------


def _stuck_job(world: World) -> Job:
    """A QUEUED job whose request was never published, for longer than the golden 900 s."""
    an_hour_ago = utcnow() - timedelta(hours=1)
    return world.has(JobState.QUEUED, state_times={JobState.QUEUED: an_hour_ago})


def test_sweep_republishes_a_stuck_job_for_the_golden_scheduler_body(world: World) -> None:
    _stuck_job(world)

    response = serve("sweep").post("/", json=golden("sweep-request.json"))

    assert response.status_code == 200
    assert response.get_json()["requests"] == [JOB_ID]
    assert world.publisher.published == [
        (
            "transcription-requests",
            {"job_id": JOB_ID, "priority": "normal", "resend": False},
            {"priority": "normal"},
        )
    ]


def test_sweep_refuses_a_body_it_does_not_know(world: World) -> None:
    _stuck_job(world)

    response = serve("sweep").post("/", json={"older_than_s": -1})

    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_request"
    assert world.publisher.published == []


def test_sweep_answers_500_while_the_job_store_is_out(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.store_down(monkeypatch, "list")

    assert serve("sweep").post("/", json=golden("sweep-request.json")).status_code == 500


# --- api ---------------------------------------------------------------------------------------


def _bearer(subject: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_hs256(SECRET, subject)}"}


def test_api_serves_the_callers_job_hides_anothers_and_says_when_not_ready(world: World) -> None:
    world.has(JobState.QUEUED)  # owned by "tester"
    api = serve("api")

    mine = api.get(f"/v1/jobs/{JOB_ID}", headers=_bearer("tester"))
    theirs = api.get(f"/v1/jobs/{JOB_ID}", headers=_bearer("someone-else"))
    early = api.get(f"/v1/jobs/{JOB_ID}/transcript", headers=_bearer("tester"))

    assert mine.status_code == 200
    assert (mine.get_json()["job_id"], mine.get_json()["state"]) == (JOB_ID, "QUEUED")
    assert theirs.status_code == 404
    assert theirs.get_json()["error"]["code"] == "job_not_found"
    assert early.status_code == 409
    assert early.get_json()["error"]["code"] == "transcript_not_ready"


def test_api_answers_503_with_retry_after_while_the_job_store_is_out(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.store_down(monkeypatch)

    response = serve("api").get(f"/v1/jobs/{JOB_ID}", headers=_bearer("tester"))

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.get_json()["error"]["code"] == "store_unavailable"


@pytest.fixture(scope="module")
def api_app() -> FlaskClient:
    return serve("api")


@pytest.mark.parametrize(
    "path", ["/v1/jobs/%0a", "/healthz%0d%0a", "/v1/jobs/%0a/notes", "/robots.txt"]
)
def test_paths_the_framework_routes_itself_get_the_json_error_body(
    api_app: FlaskClient, path: str
) -> None:
    response = api_app.get(path)
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert response.get_json()["error"]["code"] == "not_found"


def test_the_api_entry_point_hands_the_request_to_the_api_app(api_app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # The app is configured from the settings (proxy hops, body limit) when first called.
    monkeypatch.setenv("AUDIONOTES_PROJECT", "audionotes-test")
    monkeypatch.setenv("AUDIONOTES_BUCKETS__INBOX", "test-inbox")
    monkeypatch.setenv("AUDIONOTES_BUCKETS__RESULTS", "test-results")
    assert api_app.get("/healthz").get_json() == {"status": "ok"}
    wrong = api_app.put("/v1/jobs", data=b"{}")
    assert (wrong.status_code, wrong.get_json()["error"]["code"]) == (405, "method_not_allowed")
    assert wrong.headers["Allow"] == "GET, HEAD, POST"
