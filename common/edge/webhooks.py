"""Webhooks: a signed POST when a job's notes are ready, retried, through the SSRF guard.

Signature: ``X-Audionotes-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``
with ``X-Audionotes-Timestamp: <unix seconds>``; receivers recompute it, compare in constant
time and refuse stale timestamps (``verify``). Each try is signed afresh. The body carries a
``delivery_id`` that is the same on every try and every redelivery, for receivers to dedupe.

Every URL goes through ``common.edge.ssrf`` (the one guard): the preflight, and again at connect
time and on each redirect. Retries: network errors, 408, 429 (honouring Retry-After) and 5xx;
any other 4xx is the receiver's final answer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from pydantic import BaseModel

from common.domain.errors import AudionotesError
from common.domain.retry import Backoff, parse_retry_after
from common.edge.ssrf import UrlNotAllowed, UrlPolicy, check_with_policy, fetch
from common.obs.logs import get_logger

log = get_logger(__name__)

SIGNATURE_HEADER = "X-Audionotes-Signature"
TIMESTAMP_HEADER = "X-Audionotes-Timestamp"
EVENT_HEADER = "X-Audionotes-Event"
_RETRYABLE = frozenset({408, 425, 429})


class WebhookFailed(AudionotesError):
    """Every try failed in a way that may pass: transient, worth a redelivery."""

    code = "webhook_failed"


class WebhookReceipt(BaseModel):
    """``jobs/{job_id}/webhook.json``: what became of the delivery."""

    url: str
    delivered: bool
    status: int | None = None
    attempts: int = 0
    error: str | None = None
    delivery_id: str


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def verify(
    secret: bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: float = 300.0,
    now: float | None = None,
) -> bool:
    """For receivers (and tests): a valid, fresh signature."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        timestamp = int(lowered[TIMESTAMP_HEADER.lower()])
        given = lowered[SIGNATURE_HEADER.lower()]
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), given)


@dataclass
class WebhookSender:
    policy: UrlPolicy
    secret: bytes
    attempts: int = 4
    timeout_s: float = 10.0
    backoff: Backoff = field(default_factory=lambda: Backoff(base_s=1.0, max_s=30.0))
    max_retry_after_s: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    rand: Callable[[], float] = random.random
    clock: Callable[[], float] = time.time

    def deliver(
        self, url: str, event: str, payload: Mapping[str, Any], delivery_id: str
    ) -> WebhookReceipt:
        """Refused URL or a final 4xx: a receipt with ``delivered=False`` (permanent).
        Transient failures on every try: ``WebhookFailed``."""
        try:
            check_with_policy(url, self.policy)
        except UrlNotAllowed as exc:
            return WebhookReceipt(
                url=url,
                delivered=False,
                error=f"{exc.code}: {exc.message}",
                delivery_id=delivery_id,
            )
        body = json.dumps(
            {"event": event, "delivery_id": delivery_id, **payload}, separators=(",", ":")
        ).encode()
        last = "no attempt"
        for attempt in range(1, self.attempts + 1):
            timestamp = int(self.clock())
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "audionotes-webhooks/1",
                EVENT_HEADER: event,
                TIMESTAMP_HEADER: str(timestamp),
                SIGNATURE_HEADER: sign(self.secret, timestamp, body),
            }
            retry_after: float | None = None
            try:
                response = fetch(
                    url,
                    self.policy,
                    method="POST",
                    headers=headers,
                    data=body,
                    timeout=self.timeout_s,
                )
            except UrlNotAllowed as exc:  # a redirect to somewhere refused
                return WebhookReceipt(
                    url=url,
                    delivered=False,
                    attempts=attempt,
                    error=f"{exc.code}: {exc.message}",
                    delivery_id=delivery_id,
                )
            except requests.RequestException as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                response.close()
                if 200 <= status < 300:
                    return WebhookReceipt(
                        url=url,
                        delivered=True,
                        status=status,
                        attempts=attempt,
                        delivery_id=delivery_id,
                    )
                if 400 <= status < 500 and status not in _RETRYABLE:
                    return WebhookReceipt(
                        url=url,
                        delivered=False,
                        status=status,
                        attempts=attempt,
                        error=f"the receiver answered {status}",
                        delivery_id=delivery_id,
                    )
                last = f"HTTP {status}"
                retry_after = parse_retry_after(dict(response.headers))
            log.warning("webhook try %d to %s failed: %s", attempt, url, last)
            if attempt < self.attempts:
                if retry_after is not None and retry_after > self.max_retry_after_s:
                    break
                self.sleep(self.backoff.delay(attempt, retry_after=retry_after, rand=self.rand))
        raise WebhookFailed(f"webhook to {url} failed after {self.attempts} tries: {last}")
