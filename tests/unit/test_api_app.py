"""The API's Flask app through Flask's test client, on the in-memory stores: routing, the query
models, the trusted proxy hops, the body limit and the error envelope."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import flask
import pytest
from flask.testing import FlaskClient

from common.config.settings import Settings
from common.domain.errors import InvalidInput
from common.domain.jobs import JobState
from common.domain.subtitles import SubtitleOptions, render, to_srt
from common.domain.transcripts import Transcript, result_uri
from common.domain.whisper_models import CATALOG
from common.edge.auth import issue_hs256
from common.gcp.rate_limit import RateLimiter
from functions.api import build_api
from functions.api.http import create_app, status_of
from functions.api.service import ApiServices
from functions.bootstrap import Services
from tests.conftest import REPO_ROOT
from tests.fakes import (
    FakeLauncher,
    MemoryBlobStore,
    MemoryJobStore,
    RecordingPublisher,
    new_job,
)

SECRET = "a-test-secret-long-enough-for-hs256-keys"
UNKNOWN_JOB = f"/v1/jobs/a-{0:032d}"


class RecordingLimiter(RateLimiter):
    """Counts nothing, refuses nothing: records the keys each request was counted under."""

    def __init__(self) -> None:
        super().__init__("audionotes-test", "rate-limits", [])
        self.keys: list[list[str]] = []

    def hit(self, keys: Sequence[str]) -> None:
        self.keys.append(list(keys))


def _settings(hops: int = 1) -> Settings:
    return Settings(
        project="audionotes-test",
        buckets={"inbox": "test-inbox", "results": "test-results"},
        auth={"jwt_secret": SECRET, "trusted_proxy_hops": hops},
    )


def _api(settings: Settings) -> ApiServices:
    core = Services(
        settings=settings,
        jobs=MemoryJobStore(),
        publisher=RecordingPublisher(),  # type: ignore[arg-type]
        blobs=MemoryBlobStore(),
    )
    api = build_api(core, canceller=FakeLauncher())
    return dataclasses.replace(api, limiter=RecordingLimiter())


def _client(
    hops: int = 1, factory: Callable[[], ApiServices] | None = None
) -> tuple[FlaskClient, ApiServices]:
    settings = _settings(hops)
    api = _api(settings)
    return create_app(settings, factory or (lambda: api)).test_client(), api


def _auth(subject: str = "alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_hs256(SECRET, subject)}"}


def _error(response: flask.Response) -> tuple[int, str]:
    assert response.mimetype == "application/json"
    return response.status_code, response.get_json()["error"]["code"]


def test_healthz_answers_without_building_the_services() -> None:
    def broken() -> ApiServices:
        raise RuntimeError("no Firestore client")

    client, _ = _client(factory=broken)
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert _error(client.get("/v1/jobs", headers=_auth())) == (500, "internal")


def test_a_view_per_route_and_json_errors_for_unrouted_requests() -> None:
    client, _ = _client()
    assert client.get("/v1/jobs", headers=_auth()).get_json() == {
        "jobs": [],
        "next_page_token": None,
    }
    assert client.get("/v1/jobs/", headers=_auth()).status_code == 200  # no redirect
    assert _error(client.get("/v2/jobs")) == (404, "not_found")
    assert _error(client.get(UNKNOWN_JOB, headers=_auth())) == (404, "job_not_found")
    assert _error(client.get("/v1/jobs/x%20y", headers=_auth())) == (404, "job_not_found")
    for method in ("PUT", "OPTIONS"):
        wrong = client.open("/v1/jobs", method=method)
        assert _error(wrong) == (405, "method_not_allowed")
        assert wrong.headers["Allow"] == "GET, HEAD, POST"
    unauthenticated = client.get("/v1/jobs")
    assert _error(unauthenticated) == (401, "missing_token")
    assert unauthenticated.headers["WWW-Authenticate"] == 'Bearer realm="audionotes"'


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/v1/jobs?x=1", "unknown_parameter"),
        ("/v1/jobs?limit=5&limit=6", "unknown_parameter"),
        (f"{UNKNOWN_JOB}?format=json", "unknown_parameter"),  # get_job takes no query
        ("/v1/jobs?limit=0", "bad_limit"),
        ("/v1/jobs?limit=101", "bad_limit"),
        ("/v1/jobs?limit=ten", "bad_limit"),
        ("/v1/jobs?limit=+5", "bad_limit"),
        ("/v1/jobs?limit=", "bad_limit"),
        ("/v1/jobs?state=Queued", "bad_state"),
        ("/v1/jobs?state=", "bad_state"),
        ("/v1/jobs?page_token=%21%21", "bad_page_token"),
        ("/v1/jobs?page_token=X19tYWluX18", "bad_page_token"),  # base64 of a reserved id
        (f"{UNKNOWN_JOB}/transcript?format=pdf", "bad_format"),
        (f"{UNKNOWN_JOB}/notes?format=srt", "bad_format"),
        (f"{UNKNOWN_JOB}/transcript?format=srt&max_line_chars=9", "bad_max_line_chars"),
        (f"{UNKNOWN_JOB}/transcript?format=srt&max_line_chars=201", "bad_max_line_chars"),
        (f"{UNKNOWN_JOB}/transcript?format=srt&max_line_chars=3.5e1", "bad_max_line_chars"),
        (f"{UNKNOWN_JOB}/transcript?format=vtt&max_lines=0", "bad_max_lines"),
        (f"{UNKNOWN_JOB}/transcript?format=vtt&max_lines=5", "bad_max_lines"),
        (f"{UNKNOWN_JOB}/transcript?format=srt&max_cue_s=0.5", "bad_max_cue_s"),
        (f"{UNKNOWN_JOB}/transcript?format=srt&max_cue_s=inf", "bad_max_cue_s"),
        (f"{UNKNOWN_JOB}/transcript?format=srt&min_gap_s=2.5", "bad_min_gap_s"),
        (f"{UNKNOWN_JOB}/transcript?format=srt&highlight_words=yes", "bad_highlight_words"),
        (f"{UNKNOWN_JOB}/transcript?format=srt&max_lines=1&max_lines=2", "unknown_parameter"),
        (f"{UNKNOWN_JOB}/transcript?format=srt&max_chars=20", "unknown_parameter"),
    ],
)
def test_query_parameters_are_the_routes_models_and_unknown_ones_are_refused(
    path: str, code: str
) -> None:
    client, _ = _client()
    response = client.get(path, headers=_auth())
    assert _error(response) == (400, code)
    assert response.get_json()["error"]["message"]


def test_known_query_values_reach_the_service() -> None:
    client, _ = _client()
    for path in ("/v1/jobs?state=queued&limit=05", "/v1/jobs?state=FAILED"):
        assert client.get(path, headers=_auth()).status_code == 200, path
    # The format is valid, so the missing job is what is reported.
    notes = client.get(f"{UNKNOWN_JOB}/notes?format=md", headers=_auth())
    assert _error(notes) == (404, "job_not_found")


@pytest.mark.parametrize(
    ("hops", "forwarded_for", "counted_as"),
    [
        (1, "198.51.100.77, 203.0.113.9", "203.0.113.9"),  # the first one is spoofable
        (2, "198.51.100.77, 203.0.113.9", "198.51.100.77"),
        (0, "198.51.100.77, 203.0.113.9", "127.0.0.1"),  # no proxy trusted: the TCP peer
        (2, "203.0.113.9", "127.0.0.1"),  # fewer hops than trusted
        (1, "not-an-address", "127.0.0.1"),
        (1, "2001:DB8::0:1", "2001:db8::1"),
    ],
)
def test_rate_limits_count_the_address_the_trusted_hop_saw(
    hops: int, forwarded_for: str, counted_as: str
) -> None:
    client, api = _client(hops)
    response = client.get("/v1/jobs", headers={"X-Forwarded-For": forwarded_for})
    assert response.status_code == 401
    assert isinstance(api.limiter, RecordingLimiter)
    assert api.limiter.keys == [[f"ip:{counted_as}"]]  # failed logins count too


@pytest.mark.parametrize(
    ("hops", "forwarded", "root"),
    [
        (1, "https", "https://api.example.com/"),  # Google's front end terminated TLS
        (1, "http, https", "https://api.example.com/"),  # the hop we trust is the last
        (0, "https", "http://api.example.com/"),  # no proxy trusted: the request as it came
        (1, None, "http://api.example.com/"),
        (1, "gopher", "http://api.example.com/"),
    ],
)
def test_urls_use_the_scheme_the_caller_used(hops: int, forwarded: str | None, root: str) -> None:
    settings = _settings(hops)
    app = create_app(settings, lambda: _api(settings))
    app.add_url_rule("/root", "root", lambda: flask.request.url_root)  # what status_url uses
    headers = {"X-Forwarded-Proto": forwarded} if forwarded else {}
    response = app.test_client().get("/root", base_url="http://api.example.com", headers=headers)
    assert response.get_data(as_text=True) == root


def test_a_body_over_the_limit_is_413_before_it_is_parsed() -> None:
    client, api = _client()
    limit = api.core.settings.limits.max_body_bytes
    body = b'{"audio_url": "' + b"a" * limit + b'"}'
    response = client.post("/v1/jobs", data=body, content_type="application/json", headers=_auth())
    assert _error(response) == (413, "body_too_large")
    message = response.get_json()["error"]["message"]
    assert message == f"the body is {len(body)} bytes; the limit is {limit}"
    # Not JSON is said first, whatever the size.
    as_text = client.post("/v1/jobs", data=body, content_type="text/plain", headers=_auth())
    assert _error(as_text) == (415, "unsupported_media_type")
    unreadable = client.post(
        "/v1/uploads", data=b"{", content_type="application/json", headers=_auth()
    )
    assert _error(unreadable) == (400, "malformed_json")


def test_codes_the_store_raises_for_a_query_keep_their_400() -> None:
    # A well-formed page token of another caller's job is refused by the job store.
    assert status_of(InvalidInput("page_token is stale or invalid", code="bad_page_token")) == 400
    assert status_of(InvalidInput("bad value", code="invalid_value")) == 422


def test_subtitle_options_render_the_stored_transcript_again() -> None:
    client, api = _client()
    s = api.core.settings
    job = new_job(f"a-{1:032d}").model_copy(update={"owner": "alice", "state": JobState.COMPLETED})
    assert isinstance(api.core.jobs, MemoryJobStore) and isinstance(api.core.blobs, MemoryBlobStore)
    api.core.jobs.jobs[job.job_id] = job
    transcript = Transcript.model_validate_json(
        (REPO_ROOT / "tests/data/meeting_transcript.json").read_text()
    )
    for fmt in ("json", "srt", "tsv"):
        body = render(transcript, fmt).encode() if fmt == "json" else f"stored {fmt}".encode()
        api.core.blobs.write_bytes(
            result_uri(s, job.job_id, f"transcript.{fmt}"), body, content_type="x"
        )
    path = f"/v1/jobs/{job.job_id}/transcript"

    stored = client.get(f"{path}?format=srt", headers=_auth())
    narrow = client.get(f"{path}?format=srt&max_line_chars=20&max_lines=1", headers=_auth())
    marked = client.get(f"{path}?format=vtt&highlight_words=true&max_cue_s=5", headers=_auth())
    tsv = client.get(f"{path}?format=tsv", headers=_auth())
    as_json_writes = client.get(f"{path}?format=srt&min_gap_s=1.5e-2", headers=_auth())

    assert stored.get_data() == b"stored srt"  # no option: the stored file, as before
    assert as_json_writes.get_data(as_text=True) == to_srt(
        transcript, SubtitleOptions(min_gap_s=0.015)
    )
    assert narrow.content_type == "application/x-subrip; charset=utf-8"
    srt = narrow.get_data(as_text=True)
    assert srt == to_srt(transcript, SubtitleOptions(max_line_chars=20, max_lines=1))
    texts = [b.split("\n")[2:] for b in srt.strip().split("\n\n")]
    assert all(len(lines) == 1 and len(lines[0]) <= 20 for lines in texts)
    vtt = marked.get_data(as_text=True)
    assert vtt.startswith("WEBVTT\n\n") and "<u>Good</u> morning" in vtt
    assert marked.content_type == "text/vtt; charset=utf-8"
    assert (tsv.get_data(), tsv.content_type) == (
        b"stored tsv",
        "text/tab-separated-values; charset=utf-8",
    )
    other = client.get(f"{path}?format=vtt&max_lines=1", headers=_auth("bob"))
    assert _error(other) == (404, "job_not_found")
    # Subtitle options shape srt and vtt only (json is the default format); the job is found
    # first, since the document cannot say so.
    for query in ("max_line_chars=20", "format=txt&highlight_words=true", "format=tsv&min_gap_s=0"):
        refused = client.get(f"{path}?{query}", headers=_auth())
        assert _error(refused) == (400, "inapplicable_parameter"), query
        assert "only with format=srt or vtt" in refused.get_json()["error"]["message"]
        missing = client.get(f"{UNKNOWN_JOB}/transcript?{query}", headers=_auth())
        assert _error(missing) == (404, "job_not_found")


def test_models_lists_the_catalog_with_what_this_deployment_has() -> None:
    client, _ = _client()
    assert _error(client.get("/v1/models")) == (401, "missing_token")
    assert _error(client.get("/v1/models?x=1", headers=_auth())) == (400, "unknown_parameter")
    listed = client.get("/v1/models", headers=_auth()).get_json()["models"]
    by_name = {m["name"]: m for m in listed}
    assert list(by_name) == list(CATALOG)
    assert {n for n, m in by_name.items() if m["installed"]} == {"tiny.en", "base"}
    assert by_name["base"]["default_for"] == ["cpu", "gpu"]
    assert by_name["large-v3-turbo"] | {"installed": None} == {
        "name": "large-v3-turbo",
        "languages": "multilingual",
        "translates": False,
        "parameters_m": 809,
        "relative_speed": 8.0,
        "gpu_memory_gb": 2.5,
        "installed": None,
        "default_for": [],
    }
    assert by_name["tiny.en"]["languages"] == "en"
