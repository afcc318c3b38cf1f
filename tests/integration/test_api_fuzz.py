"""Schemathesis against the running ``api`` function and the document it serves: every check,
a valid token, a seeded and bounded run. No server error and no response the document does
not describe; data the document forbids is refused, and data it allows is not refused for a
documented field.

Loopback only: every http(s) URL the fuzzer generates for ``audio_url`` or ``webhook_url`` is
rewritten to a stub on 127.0.0.1 before the request is sent, so the service never resolves or
contacts any other host.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import CHECKS
from schemathesis.config._checks import NegativeDataRejectionConfig

from common.edge.auth import issue_hs256
from common.edge.ssrf import url_pattern

# Enough to find what the outside test found (it needed a few hundred requests per
# operation); small enough for `make test` on two cores.
EXAMPLES = int(os.environ.get("AUDIONOTES_FUZZ_EXAMPLES", "60"))
URL_FIELDS = ("audio_url", "webhook_url")


@pytest.fixture(scope="module")
def stub(speech_bytes_for_fuzz: bytes) -> Iterator[str]:
    """The only host a fuzzed URL can reach: audio at /speech.wav, 404 elsewhere."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = speech_bytes_for_fuzz if self.path == "/speech.wav" else b""
            self.send_response(200 if body else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # webhooks
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def speech_bytes_for_fuzz(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    import subprocess

    path = tmp_path_factory.mktemp("fuzz") / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "One short line."], check=True)
    return path.read_bytes()


# Any URL the service would resolve has this shape; the service refuses every other string
# (url_malformed) before it looks up any name (common/edge/ssrf.py).
CALLABLE = re.compile(url_pattern(allow_http=True))


def to_loopback(url: str, stub: str) -> str:
    """A URL the service would call, moved to the stub (its path kept, so the case keeps its
    shape): one in ten asks for the stub's audio, so few fuzzed requests become real jobs."""
    if not CALLABLE.fullmatch(url):
        return url  # refused on its shape, or gs://: nothing leaves the machine
    if int(hashlib.sha256(url.encode()).hexdigest(), 16) % 10 == 0:
        return f"http://{stub}/speech.wav"
    path = urlsplit(url).path
    return f"http://{stub}{path if path.startswith('/') else '/'}"


@pytest.fixture
def fuzz_schema(clean_stack: Any, stub: str) -> Any:
    base = clean_stack.local.function_url("api")
    secret = clean_stack.local.settings.auth.jwt_secret.get_secret_value()
    token = issue_hs256(secret, "fuzzer")
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    schema.config.update(base_url=base)

    @schema.auth()
    class Bearer:
        """The caller's valid token, as schemathesis' auth: its ignored_auth check then sends
        the same requests without it and with a broken one, and expects 401."""

        def get(self, case: Any, ctx: Any) -> str:
            return token

        def set(self, case: Any, data: str, ctx: Any) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    # A refusal is a refusal whatever its 4xx: too big (413) and not audio or not JSON (415)
    # are refusals of data the document forbids, as the document says.
    schema.config.checks.negative_data_rejection = NegativeDataRejectionConfig(
        expected_statuses=[400, 401, 403, 404, 405, 406, 413, 415, 422, 428]
    )
    _STUB[:] = [stub]
    return schema


_STUB: list[str] = []


schema = schemathesis.pytest.from_fixture("fuzz_schema")


@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES,
    derandomize=True,  # seeded: the same requests every run
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error_and_no_schema_mismatch(case: Any) -> None:
    # Here, not in a hook: every generated case passes through this line, whatever the phase.
    if isinstance(case.body, dict):
        for field in URL_FIELDS:
            if isinstance(case.body.get(field), str):
                case.body[field] = to_loopback(case.body[field], _STUB[0])
    callable_urls = [
        v
        for f in URL_FIELDS
        if isinstance(case.body, dict) and isinstance(v := case.body.get(f), str)
        if CALLABLE.fullmatch(v)
    ]
    assert all(urlsplit(u).hostname == "127.0.0.1" for u in callable_urls)  # loopback only
    response = case.call(session=_session())
    checks = list(CHECKS.get_all())
    if case.operation.label in WORLD_DEPENDENT:
        # Whether the audio exists, is audio, or answers, and whether a page token was ever
        # issued, is the world's state, which no schema can state: valid data may be refused
        # for that, and only for that.
        checks = [c for c in checks if c.__name__ != "positive_data_acceptance"]
        _refused_only_for_the_world(response, case)
    case.validate_response(response, checks=checks)


WORLD_DEPENDENT = ("POST /v1/jobs", "GET /v1/jobs")
WORLD_CODES = {
    "bad_page_token",  # well formed, but not a token this API issued to this caller
    "source_not_found",  # no such object
    "source_unreachable",  # the URL answered an error
    "url_unresolvable",
    "not_audio",
    "empty_audio",
    "audio_too_large",
    "model_language_mismatch",  # an English-only model with another language
    "model_cannot_translate",  # a translation asked of a model that only transcribes
    "idempotency_key_reused",  # the key named an earlier, different request
}


def _refused_only_for_the_world(response: Any, case: Any) -> None:
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if positive and response.status_code in (400, 413, 415, 422):
        code = response.json()["error"]["code"]
        assert code in WORLD_CODES, f"schema-valid request refused with {code}: {case.body}"


_SESSION: list[requests.Session] = []


def _session() -> requests.Session:
    if not _SESSION:
        _SESSION.append(requests.Session())
    return _SESSION[0]
