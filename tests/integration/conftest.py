from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from common.config.settings import Settings
from common.gcp.job_store import FirestoreJobStore

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(clean_stack: Any) -> Settings:
    """The running test stack's settings."""
    return clean_stack.local.settings  # type: ignore[no-any-return]


@pytest.fixture
def store(settings: Settings) -> FirestoreJobStore:
    return FirestoreJobStore(settings.project, settings.collections.jobs)


@pytest.fixture(autouse=True)
def _stack_environment(stack, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Each integration test runs with the environment `python -m emulators env` prints."""
    for key, value in stack.local.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AUDIONOTES_LOCAL_DIR", str(stack.local.state_dir))
    monkeypatch.setenv("AUDIONOTES_LOCAL_PORT_BASE", str(stack.local.ports.base))


@dataclass
class Receiver:
    """A real HTTP endpoint for push subscriptions, answering with a chosen status."""

    status: int
    url: str = ""
    bodies: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> int:
        with self.lock:
            return len(self.bodies)


@pytest.fixture
def receiver() -> Iterator[Any]:
    servers: list[ThreadingHTTPServer] = []

    def make(status: int) -> Receiver:
        rec = Receiver(status)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with rec.lock:
                    rec.bodies.append(json.loads(body))
                self.send_response(rec.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        rec.url = f"http://127.0.0.1:{server.server_address[1]}/"
        return rec

    yield make
    for server in servers:
        server.shutdown()
