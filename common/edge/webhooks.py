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


def delivered(status: int) -> bool | None:
    """A receiver's answer: delivered (2xx), refused for good (any other 4xx than 408, 425,
    429), or None: worth another try."""
    if 200 <= status < 300:
        return True
    if 400 <= status < 500 and status not in _RETRYABLE:
        return False
    return None


def next_wait(
    attempt: int,
    *,
    attempts: int,
    retry_after: float | None,
    backoff: Backoff,
    max_retry_after_s: float,
    rand: Callable[[], float],
) -> float | None:
    """Seconds to wait before try ``attempt + 1`` after a transient failure of try
    ``attempt``; None: no more tries (the last one, or a Retry-After too long to wait)."""
    if attempt >= attempts:
        return None
    if retry_after is not None and retry_after > max_retry_after_s:
        return None
    return backoff.delay(attempt, retry_after=retry_after, rand=rand)


@dataclass(frozen=True)
class _Transient:
    """A try that failed in a way that may pass."""

    error: str
    retry_after: float | None = None


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
            return _refused(url, exc, delivery_id, attempts=0)
        body = json.dumps(
            {"event": event, "delivery_id": delivery_id, **payload}, separators=(",", ":")
        ).encode()
        last = "no attempt"
        for attempt in range(1, self.attempts + 1):
            outcome = self._try(url, event, body, delivery_id, attempt)
            if isinstance(outcome, WebhookReceipt):
                return outcome
            last = outcome.error
            log.warning("webhook try %d to %s failed: %s", attempt, url, last)
            wait = next_wait(
                attempt,
                attempts=self.attempts,
                retry_after=outcome.retry_after,
                backoff=self.backoff,
                max_retry_after_s=self.max_retry_after_s,
                rand=self.rand,
            )
            if wait is None:
                break
            self.sleep(wait)
        raise WebhookFailed(f"webhook to {url} failed after {self.attempts} tries: {last}")

    def _try(
        self, url: str, event: str, body: bytes, delivery_id: str, attempt: int
    ) -> WebhookReceipt | _Transient:
        """One signed POST: the receipt of a final answer, or what failed transiently."""
        try:
            response = fetch(
                url,
                self.policy,
                method="POST",
                headers=self._headers(event, body),
                data=body,
                timeout=self.timeout_s,
            )
        except UrlNotAllowed as exc:  # a redirect to somewhere refused
            return _refused(url, exc, delivery_id, attempts=attempt)
        except requests.RequestException as exc:
            return _Transient(f"{type(exc).__name__}: {exc}")
        status = response.status_code
        response.close()
        final = delivered(status)
        if final is None:
            return _Transient(f"HTTP {status}", parse_retry_after(dict(response.headers)))
        return WebhookReceipt(
            url=url,
            delivered=final,
            status=status,
            attempts=attempt,
            error=None if final else f"the receiver answered {status}",
            delivery_id=delivery_id,
        )

    def _headers(self, event: str, body: bytes) -> dict[str, str]:
        """Signed afresh for each try, so that its timestamp is the try's."""
        timestamp = int(self.clock())
        return {
            "Content-Type": "application/json",
            "User-Agent": "audionotes-webhooks/1",
            EVENT_HEADER: event,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self.secret, timestamp, body),
        }


def _refused(url: str, exc: UrlNotAllowed, delivery_id: str, *, attempts: int) -> WebhookReceipt:
    return WebhookReceipt(
        url=url,
        delivered=False,
        attempts=attempts,
        error=f"{exc.code}: {exc.message}",
        delivery_id=delivery_id,
    )
