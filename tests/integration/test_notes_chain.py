"""The fault table: the real provider chain (official openai client, our retry loop, the
Firestore breaker and ledger) against the real local OpenAI-compatible server process and the
Firestore emulator. Each case checks the provider used, the attempts and the recorded cost."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from google.cloud import firestore

from common.config.settings import Settings
from common.domain.jobs import NotesTemplate
from common.domain.notes import Usage
from common.domain.retry import Backoff
from common.domain.transcripts import Transcript
from common.gcp.breaker_store import FirestoreBreakerStore
from common.gcp.ledger_store import FirestoreSpendLedger
from common.gcp.notes_engine import build_links
from common.notes.breaker import BreakerPosition
from common.notes.chain import NotesEngine
from common.notes.chunking import chunk_texts
from common.notes.extractive import extract_notes
from common.notes.ledger import Charge
from common.notes.retry_rule import RetryPolicy
from tests.conftest import DATA

pytestmark = pytest.mark.integration

PRICE_IN, PRICE_OUT = 0.15, 0.60  # gpt-4o-mini, the default table


class LocalLlm:
    """The stack's OpenAI-compatible server: its admin endpoints."""

    def __init__(self, base: str) -> None:
        self.base = base

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            self.base + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def reset(self) -> None:
        self._post("/_reset", {})

    def faults(self, *faults: dict[str, Any], keys: dict[str, int] | None = None) -> None:
        self._post("/_faults", {"faults": list(faults), "keys": keys or {}})

    def requests(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(self.base + "/_requests", timeout=10) as response:
            return list(json.loads(response.read())["requests"])


@pytest.fixture
def llm(clean_stack) -> LocalLlm:  # type: ignore[no-untyped-def]
    server = LocalLlm(clean_stack.local.url(clean_stack.local.ports.openai))
    server.reset()
    return server


@pytest.fixture(scope="module")
def transcript() -> Transcript:
    return Transcript.model_validate_json((DATA / "meeting_transcript.json").read_text())


@pytest.fixture
def make_engine(clean_stack, unique):  # type: ignore[no-untyped-def]
    """An engine on the stack's server, with this test's own breaker and spend collections."""
    base = clean_stack.local.settings
    url = clean_stack.local.url(clean_stack.local.ports.openai) + "/v1"
    client = firestore.Client(project=base.project)

    def make(
        *,
        keys: tuple[str, ...] = ("key-a",),
        fallback: bool = False,
        budget: float = 10.0,
        threshold: int = 3,
        open_s: float = 60.0,
        timeout_s: float = 30.0,
        max_attempts: int = 4,
    ) -> tuple[NotesEngine, Settings]:
        llm = base.llm.model_copy(
            update={
                "openai_api_keys": list(keys),
                "openai_base_url": url,
                "fallback_base_url": url if fallback else None,
                "fallback_model": "llama3.1-8b" if fallback else None,
                "breaker_failure_threshold": threshold,
                "breaker_open_s": open_s,
                "request_timeout_s": timeout_s,
            }
        )
        settings = base.model_copy(
            update={
                "llm": type(base.llm).model_validate(llm.model_dump()),
                "collections": base.collections.model_copy(
                    update={"breakers": f"breakers-{unique}", "spend": f"spend-{unique}"}
                ),
            }
        )
        engine = NotesEngine(
            build_links(settings, lambda: client),
            FirestoreSpendLedger(lambda: client, settings.collections.spend),
            policy=RetryPolicy(
                max_attempts=max_attempts, backoff=Backoff(0.05, 0.2), max_retry_after_s=30
            ),
            daily_budget_usd=budget,
        )
        return engine, settings

    return make


def _cost(requests: list[dict[str, Any]]) -> float:
    ok = [r for r in requests if r["status"] == 200]
    return (
        sum(
            r["usage"]["prompt_tokens"] * PRICE_IN + r["usage"]["completion_tokens"] * PRICE_OUT
            for r in ok
        )
        / 1e6
    )


def _breaker(settings: Settings, name: str = "openai") -> BreakerPosition:
    client = firestore.Client(project=settings.project)
    return FirestoreBreakerStore(lambda: client, settings.collections.breakers).read(name).state


def _spent(settings: Settings) -> float:
    client = firestore.Client(project=settings.project)
    return FirestoreSpendLedger(lambda: client, settings.collections.spend).spent_usd()


def _outcomes(prov: Any) -> list[tuple[str, str]]:
    return [(a.provider, a.outcome) for a in prov.attempts]


def test_success_answers_from_the_transcript_and_costs_what_usage_says(
    llm: LocalLlm, make_engine: Callable[..., Any], transcript: Transcript
) -> None:
    engine, settings = make_engine()
    notes, prov = engine.generate("j", [s.text for s in transcript.segments], NotesTemplate.MEETING)
    assert (prov.provider, prov.model, prov.requested_model) == (
        "openai",
        "local-extractive",
        "gpt-4o-mini",
    )
    assert notes == extract_notes(" ".join(s.text.strip() for s in transcript.segments))
    requests = llm.requests()
    assert [r["task"] for r in requests] == ["notes"]
    assert prov.usage == Usage(
        **{k: requests[0]["usage"][k] for k in ("prompt_tokens", "completion_tokens")},
        compute_s=prov.usage.compute_s,
    )
    assert prov.usage.compute_s > 0  # measured: the stand-in reports none
    # Priced by its tokens: OpenAI's seconds cost nothing.
    assert prov.cost_usd == pytest.approx(_cost(requests)) and prov.cost_usd > 0
    assert _spent(settings) == pytest.approx(prov.cost_usd)


def test_429s_then_success_honour_retry_after(
    llm: LocalLlm, make_engine: Callable[..., Any]
) -> None:
    engine, settings = make_engine()
    llm.faults({"status": 429, "retry_after": 1}, {"status": 429, "retry_after": 1})
    _, prov = engine.generate("j", ["Tom will call the bank on Monday."], NotesTemplate.DIARY)
    assert _outcomes(prov) == [("openai", "rate_limited")] * 2 + [("openai", "ok")]
    assert [a.waited_s >= 1.0 for a in prov.attempts[:2]] == [True, True]
    assert [r["status"] for r in llm.requests()] == [429, 429, 200]
    assert prov.cost_usd > 0 and prov.cost_usd == pytest.approx(_cost(llm.requests()))
    assert _spent(settings) == pytest.approx(prov.cost_usd)
    assert _breaker(settings) is BreakerPosition.CLOSED  # rate limits are not an outage


def test_persistent_500_opens_the_breaker_and_a_half_open_probe_closes_it(
    llm: LocalLlm, make_engine: Callable[..., Any]
) -> None:
    engine, settings = make_engine(threshold=3, open_s=1.0, max_attempts=5)
    llm.faults({"status": 500, "times": 100})
    text = ["We agreed to move the launch. Priya will update the plan by Friday."]

    _, first = engine.generate("j1", text, NotesTemplate.MEETING)
    assert _outcomes(first) == [("openai", "server_error")] * 3 + [("openai", "breaker_open")]
    assert first.provider == "extractive" and first.cost_usd == 0.0
    assert _breaker(settings) is BreakerPosition.OPEN
    assert len(llm.requests()) == 3

    _, second = engine.generate("j2", text, NotesTemplate.MEETING)  # refused without a call
    assert _outcomes(second) == [("openai", "breaker_open")]
    assert len(llm.requests()) == 3

    llm.reset()  # the provider recovers
    time.sleep(1.2)  # the breaker's open period (not a timing assertion: a precondition)
    _, third = engine.generate("j3", text, NotesTemplate.MEETING)
    assert _outcomes(third) == [("openai", "ok")]
    assert third.provider == "openai" and third.cost_usd > 0
    assert _breaker(settings) is BreakerPosition.CLOSED
    assert _spent(settings) == pytest.approx(third.cost_usd)


def test_key_rotation_on_401_and_on_429(llm: LocalLlm, make_engine: Callable[..., Any]) -> None:
    engine, _ = make_engine(keys=("revoked", "limited", "good"))
    llm.faults({"status": 429, "retry_after": 20, "key": "limited"}, keys={"revoked": 401})
    _, prov = engine.generate("j1", ["Lena will book the room."], NotesTemplate.MEETING)
    assert [(a.outcome, a.key) for a in prov.attempts] == [
        ("auth", 0),
        ("rate_limited", 1),
        ("ok", 2),
    ]
    assert sum(a.waited_s for a in prov.attempts) == 0  # another key was free: no wait
    _, again = engine.generate("j2", ["Lena will book the room."], NotesTemplate.MEETING)
    assert [(a.outcome, a.key) for a in again.attempts] == [("ok", 2)]
    assert [r["key"] for r in llm.requests()] == ["revoked", "limited", "good", "good"]


def test_timeout_is_retried(llm: LocalLlm, make_engine: Callable[..., Any]) -> None:
    engine, settings = make_engine(timeout_s=1.0)
    llm.faults({"delay_s": 3})
    _, prov = engine.generate("j", ["Omar will fix the printer."], NotesTemplate.MEETING)
    assert _outcomes(prov) == [("openai", "timeout"), ("openai", "ok")]
    assert prov.provider == "openai" and prov.calls == 1
    assert prov.cost_usd == pytest.approx(_cost(llm.requests()[-1:]))
    assert _spent(settings) == pytest.approx(prov.cost_usd)


def test_invalid_json_is_bad_output_not_an_outage(
    llm: LocalLlm, make_engine: Callable[..., Any]
) -> None:
    engine, settings = make_engine(threshold=1)
    llm.faults({"invalid_json": True})
    _, prov = engine.generate("j1", ["Ines will draft the memo."], NotesTemplate.MEETING)
    assert _outcomes(prov) == [("openai", "bad_output"), ("openai", "ok")]
    assert _breaker(settings) is BreakerPosition.CLOSED  # threshold 1, and still closed
    # Invalid twice (and truncated) exhausts the bad-output retries: the chain moves on.
    llm.faults({"invalid_json": True}, {"truncated": True})
    _, prov2 = engine.generate("j2", ["Ines will draft the memo."], NotesTemplate.MEETING)
    assert _outcomes(prov2) == [("openai", "bad_output")] * 2
    assert prov2.provider == "extractive" and prov2.fallback_reason == "openai: bad_output"
    assert _breaker(settings) is BreakerPosition.CLOSED


def test_outage_falls_back_to_the_local_endpoint_in_json_object_mode(
    llm: LocalLlm, make_engine: Callable[..., Any]
) -> None:
    engine, _ = make_engine(fallback=True, max_attempts=2)
    llm.faults({"status": 500, "times": 2, "model": "gpt-4o-mini"})
    notes, prov = engine.generate("j", ["Kai will ship the fix."], NotesTemplate.MEETING)
    assert _outcomes(prov) == [("openai", "server_error")] * 2 + [("fallback", "ok")]
    assert (prov.provider, prov.requested_model) == ("fallback", "llama3.1-8b")
    assert prov.cost_usd == 0.0  # the self-hosted model is not in the price table
    assert notes.action_items[0].owner == "Kai"
    last = llm.requests()[-1]
    assert (last["model"], last["key"]) == ("llama3.1-8b", "no-key")


def test_budget_exceeded_sends_new_jobs_to_the_fallback(
    llm: LocalLlm, make_engine: Callable[..., Any]
) -> None:
    engine, settings = make_engine(budget=0.01)
    client = firestore.Client(project=settings.project)
    ledger = FirestoreSpendLedger(lambda: client, settings.collections.spend)
    spent = Charge("earlier-call", "earlier-job", "openai", "gpt-4o-mini", Usage(), 0.02)
    assert ledger.charge(spent) and not ledger.charge(spent)  # a retried charge counts once
    _, prov = engine.generate("j", ["Mia will water the plants."], NotesTemplate.DIARY)
    assert _outcomes(prov) == [("openai", "over_budget")]
    assert prov.provider == "extractive" and prov.cost_usd == 0.0
    assert llm.requests() == []
    assert _spent(settings) == pytest.approx(0.02)


def test_a_three_hour_transcript_is_mapped_and_reduced(
    llm: LocalLlm, make_engine: Callable[..., Any], transcript: Transcript
) -> None:
    # Size only: the real transcript's segments repeated to three hours (~27,000 words).
    segments = [s.text for s in transcript.segments]
    rounds = int(3 * 3600 / transcript.duration_s) + 1
    pieces = segments * rounds
    engine, settings = make_engine()
    notes, prov = engine.generate("long", pieces, NotesTemplate.MEETING)
    chunks = chunk_texts(pieces, settings.llm.chunk_tokens)
    tasks = [r["task"] for r in llm.requests()]
    assert prov.provider == "openai" and prov.chunks == len(chunks) >= 3
    assert tasks.count("notes") == len(chunks) and tasks.count("merge") >= 1
    assert prov.calls == len(tasks)
    assert (
        max(r["usage"]["prompt_tokens"] for r in llm.requests()) < settings.llm.chunk_tokens * 1.2
    )
    assert prov.cost_usd == pytest.approx(_cost(llm.requests()))
    assert any(a.owner == "David" for a in notes.action_items)


def test_short_transcripts_share_one_request(
    llm: LocalLlm, make_engine: Callable[..., Any]
) -> None:
    engine, _ = make_engine()
    items = [
        ("a", "Zoe will renew the passport next week."),
        ("b", "We decided to paint the kitchen blue."),
        ("c", "Should we adopt a cat?"),
    ]
    results = engine.generate_batch(items, NotesTemplate.DIARY)
    assert [r["task"] for r in llm.requests()] == ["batch"]
    for job_id, text in items:
        notes, prov = results[job_id]
        assert notes == extract_notes(text, NotesTemplate.DIARY)
        assert prov.provider == "openai"
    total = sum(p.cost_usd for _, p in results.values())
    assert total == pytest.approx(_cost(llm.requests()), rel=1e-3)
    # One request costs less than three: the instructions are paid for once.
    single, _ = make_engine()
    llm.reset()
    for job_id, text in items:
        single.generate(job_id, [text], NotesTemplate.DIARY)
    assert _cost(llm.requests()) > total
