"""Webhook delivery over real HTTP: signed, retried with backoff, through the SSRF guard."""

from __future__ import annotations

import ipaddress
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from common.edge.ssrf import UrlPolicy
from common.edge.webhooks import WebhookFailed, WebhookSender, verify

pytestmark = pytest.mark.integration

SECRET = b"test-secret"
LOOPBACK = UrlPolicy(allow_http=True, allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))


class Receiver:
    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.calls: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.calls.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def receiver() -> Iterator[Any]:
    made: list[Receiver] = []

    def make(statuses: list[int]) -> Receiver:
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for r in made:
        r.server.shutdown()


def sender(policy: UrlPolicy, sleeps: list[float]) -> WebhookSender:
    return WebhookSender(policy=policy, secret=SECRET, attempts=3, sleep=sleeps.append)


def test_signed_and_retried_until_delivered(receiver: Any) -> None:
    rec = receiver([500, 503, 204])
    sleeps: list[float] = []
    receipt = sender(LOOPBACK, sleeps).deliver(rec.url, "job.completed", {"job_id": "j"}, "j:x")
    assert receipt.delivered and receipt.attempts == 3 and receipt.status == 204
    assert len(sleeps) == 2  # backoff between the tries
    for headers, body in rec.calls:
        assert verify(SECRET, headers, body)
        assert json.loads(body) == {"event": "job.completed", "delivery_id": "j:x", "job_id": "j"}
    assert not verify(b"wrong", rec.calls[0][0], rec.calls[0][1])


def test_final_4xx_is_not_retried(receiver: Any) -> None:
    rec = receiver([410])
    receipt = sender(LOOPBACK, []).deliver(rec.url, "e", {}, "d")
    assert not receipt.delivered and receipt.status == 410 and len(rec.calls) == 1


def test_receiver_down_raises_for_a_redelivery(receiver: Any) -> None:
    rec = receiver([500, 500, 500])
    with pytest.raises(WebhookFailed):
        sender(LOOPBACK, []).deliver(rec.url, "e", {}, "d")
    assert len(rec.calls) == 3


def test_private_addresses_are_refused_by_default(receiver: Any) -> None:
    rec = receiver([])
    production = UrlPolicy()
    receipt = sender(production, []).deliver(rec.url, "e", {}, "d")
    assert not receipt.delivered and rec.calls == []
    assert receipt.error is not None and receipt.error.startswith("url_scheme_not_allowed")
    https_private = sender(production, []).deliver("https://10.0.0.5/hook", "e", {}, "d")
    assert https_private.error is not None
    assert https_private.error.startswith("url_address_not_allowed")
