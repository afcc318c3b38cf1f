"""The engines the benchmark compares, built as production builds them
(``common.gcp.notes_engine``) but with in-memory breaker state and spend ledger, and what the
benchmark asks a server: its model id and its peak memory.

``tests/fakes.py`` has the same two in-memory stores; they are defined again here because
importing ``tests.fakes`` pulls in the transcribe worker (and faster-whisper) for nothing.
"""

from __future__ import annotations

import json
import resource
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from common.config.settings import Llm
from common.domain.retry import Backoff
from common.notes.breaker import BreakerConfig, BreakerState, CircuitBreaker
from common.notes.chain import NotesEngine, ProviderLink
from common.notes.keys import KeyRing
from common.notes.ledger import Charge
from common.notes.providers import ChatProvider, RequestStyle
from common.notes.retry_rule import RetryPolicy

T = TypeVar("T")
# Self-hosted servers ignore the key, but the client insists on one (as in production).
NO_KEY = "no-key"


class MemoryBreakerStore:
    """The circuit breaker's state, in memory (one benchmark process, one run)."""

    def __init__(self) -> None:
        self.states: dict[str, BreakerState] = {}
        self._lock = threading.Lock()

    def read(self, name: str) -> BreakerState:
        return self.states.get(name, BreakerState())

    def mutate(
        self, name: str, change: Callable[[BreakerState], tuple[T, BreakerState | None]]
    ) -> T:
        with self._lock:
            result, new = change(self.states.get(name, BreakerState()))
            if new is not None:
                self.states[name] = new
            return result


class MemorySpendLedger:
    """Every charge kept in memory; local models cost nothing, so the budget never bites."""

    def __init__(self) -> None:
        self.charges: list[Charge] = []

    def spent_usd(self, day: str | None = None) -> float:
        return sum(c.usd for c in self.charges)

    def charge(self, charge: Charge) -> bool:
        self.charges.append(charge)
        return True


def _engine(links: list[ProviderLink], llm: Llm) -> NotesEngine:
    return NotesEngine(
        links,
        MemorySpendLedger(),
        policy=RetryPolicy(
            max_attempts=llm.max_attempts,
            backoff=Backoff(base_s=llm.backoff_base_s, max_s=llm.backoff_max_s),
            max_retry_after_s=llm.max_retry_after_s,
            bad_output_retries=llm.bad_output_retries,
        ),
        daily_budget_usd=llm.daily_budget_usd,
        chunk_tokens=llm.chunk_tokens,
        batch_max_items=llm.batch_max_items,
        batch_item_max_tokens=llm.batch_item_max_tokens,
    )


def extractive_engine(llm: Llm | None = None) -> NotesEngine:
    """No links: every transcript goes to the extractive engine, the chain's last fallback."""
    return _engine([], llm or Llm())


def chat_engine(
    name: str, base_url: str, model: str, *, timeout_s: float, llm: Llm | None = None
) -> NotesEngine:
    """One OpenAI-compatible provider with strict structured output (``json_schema``), the
    production defaults (``Llm()``) for everything but the timeout, then extractive."""
    llm = llm or Llm()
    link = ProviderLink(
        provider=ChatProvider(
            name,
            model=model,
            base_url=base_url,
            style=RequestStyle.JSON_SCHEMA,
            timeout_s=timeout_s,
            max_output_tokens=llm.max_output_tokens,
        ),
        keys=KeyRing([NO_KEY]),
        breaker=CircuitBreaker(
            name,
            MemoryBreakerStore(),
            BreakerConfig(
                failure_threshold=llm.breaker_failure_threshold,
                open_s=llm.breaker_open_s,
                probe_lease_s=llm.breaker_probe_lease_s,
            ),
        ),
        prices={},  # a local model: free
    )
    return _engine([link], llm)


class Unreachable(Exception):
    """The server did not answer a GET the benchmark needs."""


def get_json(url: str, timeout_s: float = 10.0) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise Unreachable(f"GET {url}: {exc}") from exc


def served_model(base_url: str, timeout_s: float = 10.0) -> str:
    """The first model id of ``GET {base_url}/models``."""
    body = get_json(base_url.rstrip("/") + "/models", timeout_s)
    try:
        return str(body["data"][0]["id"])
    except (KeyError, IndexError, TypeError) as exc:
        raise Unreachable(f"GET {base_url}/models: no model id in {str(body)[:200]}") from exc


def server_root(base_url: str) -> str:
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def server_peak_rss_mb(base_url: str) -> float | None:
    """``peak_rss_mb`` of ``GET {root}/health`` (``run_jobs.llm.server``); None without."""
    try:
        body = get_json(server_root(base_url) + "/health", 5.0)
    except Unreachable:
        return None
    value = body.get("peak_rss_mb") if isinstance(body, dict) else None
    return float(value) if isinstance(value, int | float) else None


def pid_peak_rss_mb(pid: int) -> float | None:
    """VmHWM (peak resident set) of a running process, from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError):
        return None
    return None


def own_peak_rss_mb() -> float:
    """This process's peak RSS (Linux reports ``ru_maxrss`` in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
