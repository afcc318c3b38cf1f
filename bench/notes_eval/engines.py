"""The engines the benchmark compares, built as production builds them
(``common.gcp.notes_engine``) but on the in-memory breaker store and spend ledger, and what the
benchmark asks a server: its model id and its peak memory."""

from __future__ import annotations

import json
import resource
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from common.config.settings import FallbackStyle, Llm
from common.domain.local_llms import CHUNK_TOKENS
from common.gcp.notes_engine import engine_from, links_from
from common.notes.breaker import MemoryBreakerStore
from common.notes.chain import NotesEngine
from common.notes.ledger import MemorySpendLedger


def extractive_engine(llm: Llm | None = None) -> NotesEngine:
    """No links: every transcript goes to the extractive engine, the chain's last fallback."""
    return engine_from(llm or Llm(), [], MemorySpendLedger())


def chat_engine(
    name: str, base_url: str, model: str, *, timeout_s: float, llm: Llm | None = None
) -> NotesEngine:
    """One OpenAI-compatible provider asked as the notes function asks our model server (its
    fallback: strict ``json_schema`` output, the local stack's chunk size), the production
    defaults for the rest, then extractive. Named ``fallback`` in the provenance."""
    base = llm or Llm()
    llm = base.model_copy(
        update={
            "openai_api_keys": [],
            "fallback_base_url": base_url,
            "fallback_model": model,
            "fallback_style": FallbackStyle.JSON_SCHEMA,
            "fallback_request_timeout_s": timeout_s,
            "fallback_chunk_tokens": CHUNK_TOKENS,
        }
    )
    return engine_from(llm, links_from(llm, MemoryBreakerStore()), MemorySpendLedger())


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
