"""Exponential backoff with full jitter that never retries sooner than Retry-After says."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    base_s: float = 1.0
    max_s: float = 30.0

    def delay(self, attempt: int, *, retry_after: float | None, rand: Callable[[], float]) -> float:
        """Seconds to wait before try ``attempt + 1`` (``attempt`` counts from 1).

        Full jitter (uniform over [0, min(max, base * 2**(attempt-1))]) spreads the retries of
        many instances; a server's Retry-After is a floor, never shortened by the jitter.
        """
        ceiling = min(self.max_s, self.base_s * (2 ** max(attempt - 1, 0)))
        wait: float = rand() * ceiling
        if retry_after is not None:
            wait = max(wait, retry_after)
        return wait


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds from ``retry-after-ms`` (OpenAI), ``retry-after`` (seconds or an HTTP date)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms:
        try:
            return max(float(raw_ms) / 1000.0, 0.0)
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if not raw:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)
