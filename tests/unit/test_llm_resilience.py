"""The provider chain's parts without a network: backoff, Retry-After, keys, breaker, pricing,
the retry loop (with a scripted provider), batching and webhook signatures."""

from __future__ import annotations

from typing import Any

import pytest

from common.config.settings import ModelPrice
from common.domain.jobs import NotesTemplate
from common.domain.notes import Usage
from common.domain.retry import Backoff, parse_retry_after
from common.edge.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify
from common.notes.breaker import BreakerConfig, BreakerPosition, CircuitBreaker, MemoryBreakerStore
from common.notes.chain import NotesEngine, ProviderLink
from common.notes.chunking import chunk_texts, estimate_tokens
from common.notes.errors import (
    AuthFailed,
    BadOutput,
    ProviderError,
    ProviderRateLimited,
    ProvidersDown,
    ServerError,
)
from common.notes.extractive import extract_notes
from common.notes.keys import KeyRing
from common.notes.ledger import Charge, MemorySpendLedger
from common.notes.pricing import cost_usd, price_for
from common.notes.prompts import PromptKind, map_messages, parse_request
from common.notes.providers import ChatProvider, Completion, RequestStyle
from common.notes.retry_rule import RetryPolicy
from emulators.openai_server import answer
from tests.fakes import Clock

PRICES = {"gpt-4o-mini": ModelPrice(input_per_mtok=0.15, output_per_mtok=0.60)}
TEXT = "Anna will send the budget by Friday. We decided to hire two engineers. Is the office open?"


class ScriptedProvider(ChatProvider):
    """Raises the scripted errors in order, then answers with the extractive engine."""

    def __init__(self, script: list[ProviderError], model: str = "gpt-4o-mini") -> None:
        super().__init__(
            "openai",
            model=model,
            base_url=None,
            style=RequestStyle.JSON_SCHEMA,
            timeout_s=1,
            max_output_tokens=1000,
        )
        self.script = list(script)
        self.keys_used: list[str] = []

    def complete(self, messages: list[dict[str, Any]], schema: type[Any], key: str) -> Any:
        self.keys_used.append(key)
        if self.script:
            raise self.script.pop(0)
        _, _, content = answer(messages)  # what the local server would answer
        return Completion(
            parsed=schema.model_validate_json(content),
            usage=Usage(prompt_tokens=1000, completion_tokens=500),
            model="gpt-4o-mini-2024-07-18",
        )


def engine(
    provider: ScriptedProvider,
    *,
    keys: tuple[str, ...] = ("k0",),
    ledger: MemorySpendLedger | None = None,
    budget: float = 10.0,
    breaker: CircuitBreaker | None = None,
    sleeps: list[float] | None = None,
    policy: RetryPolicy | None = None,
) -> NotesEngine:
    now = [0.0]
    out = sleeps if sleeps is not None else []

    def sleep(seconds: float) -> None:  # a fake clock that the key ring shares
        out.append(seconds)
        now[0] += seconds

    link = ProviderLink(
        provider=provider,
        keys=KeyRing(list(keys), clock=lambda: now[0]),
        breaker=breaker or CircuitBreaker("openai", MemoryBreakerStore(), BreakerConfig(3, 60)),
        prices=PRICES,
    )
    return NotesEngine(
        [link],
        ledger or MemorySpendLedger(),
        policy=policy or RetryPolicy(max_attempts=4, backoff=Backoff(1.0, 8.0)),
        daily_budget_usd=budget,
        sleep=sleep,
        rand=lambda: 0.5,
    )


# backoff and Retry-After ---------------------------------------------------------------------
def test_backoff_is_full_jitter_capped_and_floored_by_retry_after() -> None:
    b = Backoff(base_s=1.0, max_s=8.0)
    assert [b.delay(n, retry_after=None, rand=lambda: 1.0) for n in (1, 2, 3, 4, 5)] == [
        1,
        2,
        4,
        8,
        8,
    ]
    assert b.delay(3, retry_after=None, rand=lambda: 0.0) == 0.0
    assert b.delay(1, retry_after=5.0, rand=lambda: 1.0) == 5.0  # never sooner than the server


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"Retry-After": "Thu, 01 Jan 2026 00:00:10 GMT"}, now=1767225600) == 10
    assert parse_retry_after({}) is None
    assert parse_retry_after({"Retry-After": "soon"}) is None


# keys ---------------------------------------------------------------------------------------
def test_keyring_retires_and_rests_keys() -> None:
    t = [0.0]
    ring = KeyRing(["a", "b"], clock=lambda: t[0])
    assert ring.pick() == (0, "a")
    ring.retire(0)
    assert ring.pick() == (1, "b")
    ring.rest(1, 5)
    assert ring.pick() is None and ring.wait_s() == 5
    t[0] = 5.0
    assert ring.pick() == (1, "b")
    ring.retire(1)
    assert ring.pick() is None and ring.wait_s() is None


# breaker ------------------------------------------------------------------------------------
def test_breaker_opens_refuses_probes_once_and_closes() -> None:
    clock = Clock()
    store = MemoryBreakerStore()
    a = CircuitBreaker("p", store, BreakerConfig(3, 30, probe_lease_s=100), clock=clock.utc)
    b = CircuitBreaker(
        "p", store, BreakerConfig(3, 30, probe_lease_s=100), clock=clock.utc
    )  # 2nd instance
    for _ in range(2):
        a.record_failure()
    assert a.state().state is BreakerPosition.CLOSED and a.allow()
    b.record_failure()  # failures are shared
    assert a.state().state is BreakerPosition.OPEN
    assert not a.allow() and not b.allow()
    clock.advance(30)
    assert a.allow()  # the probe
    assert a.state().state is BreakerPosition.HALF_OPEN
    assert not b.allow()  # only one probe at a time
    a.record_success()
    assert b.state().state is BreakerPosition.CLOSED and b.allow()


def test_failed_probe_reopens_and_a_lost_probe_is_replaced() -> None:
    clock = Clock()
    breaker = CircuitBreaker("p", MemoryBreakerStore(), BreakerConfig(1, 10, 20), clock=clock.utc)
    breaker.record_failure()
    clock.advance(10)
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state().state is BreakerPosition.OPEN
    clock.advance(10)
    assert breaker.allow()  # probe taken, then the probing instance dies
    assert not breaker.allow()
    clock.advance(20)
    assert breaker.allow()  # its lease ran out


def test_a_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker("p", MemoryBreakerStore(), BreakerConfig(2, 10))
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state().state is BreakerPosition.CLOSED


# pricing, chunking, prompts -----------------------------------------------------------------
def test_price_by_longest_prefix() -> None:
    prices = {
        "gpt-4o": ModelPrice(input_per_mtok=2.5, output_per_mtok=10),
        "gpt-4o-mini": ModelPrice(input_per_mtok=0.15, output_per_mtok=0.6),
    }
    assert price_for("gpt-4o-mini-2024-07-18", prices) == prices["gpt-4o-mini"]
    assert price_for("gpt-4o-2024-08-06", prices) == prices["gpt-4o"]
    assert price_for("llama3", prices) is None
    usage = Usage(prompt_tokens=2_000_000, completion_tokens=1_000_000)
    assert cost_usd(usage, prices["gpt-4o-mini"]) == pytest.approx(0.9)
    assert cost_usd(usage, None) == 0.0


def test_chunks_are_token_bounded_and_lose_nothing() -> None:
    pieces = [f"Sentence number {i} is about topic {i % 7}." for i in range(2000)]
    chunks = chunk_texts(pieces, 500)
    assert len(chunks) > 1
    assert all(estimate_tokens(c) <= 500 for c in chunks)
    assert " ".join(chunks) == " ".join(pieces)
    long_piece = "word " * 5000  # one segment longer than a chunk is cut at words
    assert all(estimate_tokens(c) <= 500 for c in chunk_texts([long_piece], 500))


def test_requests_say_what_they_ask() -> None:
    task, template, payload = parse_request(map_messages(TEXT, NotesTemplate.LECTURE))
    assert (task, template, payload) == (PromptKind.NOTES, NotesTemplate.LECTURE, TEXT)
    with pytest.raises(ValueError):
        parse_request([{"role": "user", "content": "hi"}])


# the retry loop -----------------------------------------------------------------------------
def test_rate_limits_then_success_wait_for_retry_after() -> None:
    sleeps: list[float] = []
    ledger = MemorySpendLedger()
    provider = ScriptedProvider(
        [ProviderRateLimited("429", retry_after=3.0), ProviderRateLimited("429")]
    )
    notes, prov = engine(provider, ledger=ledger, sleeps=sleeps).generate(
        "j", [TEXT], NotesTemplate.MEETING
    )
    assert prov.provider == "openai" and prov.model == "gpt-4o-mini-2024-07-18"
    assert [a.outcome for a in prov.attempts] == ["rate_limited", "rate_limited", "ok"]
    assert sleeps == [3.0, 1.0]  # Retry-After honoured; then jittered backoff (0.5 * 2)
    expected = (1000 * 0.15 + 500 * 0.60) / 1e6
    assert prov.cost_usd == pytest.approx(expected)
    assert ledger.spent_usd() == pytest.approx(expected)
    assert notes.action_items[0].owner == "Anna"


def test_server_errors_open_the_breaker_and_fall_back_to_extractive() -> None:
    store = MemoryBreakerStore()
    breaker = CircuitBreaker("openai", store, BreakerConfig(3, 60))
    provider = ScriptedProvider([ServerError("500", status=500)] * 10)
    notes, prov = engine(provider, breaker=breaker).generate("j", [TEXT], NotesTemplate.MEETING)
    assert [a.outcome for a in prov.attempts] == ["server_error"] * 3 + ["breaker_open"]
    assert prov.provider == "extractive" and prov.cost_usd == 0.0 and prov.calls == 0
    assert prov.fallback_reason == "openai: breaker_open"
    assert notes == extract_notes(TEXT)
    assert breaker.state().state is BreakerPosition.OPEN


def test_bad_output_is_retried_once_and_never_trips_the_breaker() -> None:
    breaker = CircuitBreaker("openai", MemoryBreakerStore(), BreakerConfig(1, 60))
    provider = ScriptedProvider([BadOutput("invalid json")] * 2)
    _, prov = engine(provider, breaker=breaker).generate("j", [TEXT], NotesTemplate.MEETING)
    assert [a.outcome for a in prov.attempts] == ["bad_output", "bad_output"]
    assert prov.provider == "extractive" and prov.fallback_reason == "openai: bad_output"
    assert breaker.state().state is BreakerPosition.CLOSED


def test_auth_failure_rotates_to_the_next_key_for_good() -> None:
    provider = ScriptedProvider([AuthFailed("401", status=401)])
    eng = engine(provider, keys=("revoked", "good"))
    _, prov = eng.generate("j1", [TEXT], NotesTemplate.MEETING)
    assert [(a.outcome, a.key) for a in prov.attempts] == [("auth", 0), ("ok", 1)]
    eng.generate("j2", [TEXT], NotesTemplate.MEETING)
    assert provider.keys_used == ["revoked", "good", "good"]


def test_billed_bad_output_is_charged_but_not_an_outage() -> None:
    ledger = MemorySpendLedger()
    truncated = BadOutput("truncated", usage=Usage(prompt_tokens=1000, completion_tokens=4000))
    _, prov = engine(ScriptedProvider([truncated]), ledger=ledger).generate(
        "j", [TEXT], NotesTemplate.MEETING
    )
    assert [a.outcome for a in prov.attempts] == ["bad_output", "ok"]
    wasted = (1000 * 0.15 + 4000 * 0.60) / 1e6
    answered = (1000 * 0.15 + 500 * 0.60) / 1e6
    assert prov.calls == 2 and prov.cost_usd == pytest.approx(wasted + answered)
    assert ledger.spent_usd() == pytest.approx(wasted + answered)
    assert prov.usage.completion_tokens == 4500


def test_a_retry_after_too_long_for_one_key_rotates_to_the_next() -> None:
    sleeps: list[float] = []
    provider = ScriptedProvider([ProviderRateLimited("429", retry_after=600.0)])
    _, prov = engine(provider, keys=("busy", "free"), sleeps=sleeps).generate(
        "j", [TEXT], NotesTemplate.MEETING
    )
    assert [(a.outcome, a.key) for a in prov.attempts] == [("rate_limited", 0), ("ok", 1)]
    assert prov.provider == "openai" and sleeps == []


def test_a_retry_after_too_long_on_every_key_gives_the_provider_up() -> None:
    provider = ScriptedProvider([ProviderRateLimited("429", retry_after=600.0)] * 2)
    _, prov = engine(provider, keys=("a", "b")).generate("j", [TEXT], NotesTemplate.MEETING)
    assert [a.key for a in prov.attempts] == [0, 1]
    assert prov.provider == "extractive" and "too long" in (prov.fallback_reason or "")


def test_a_half_open_probe_that_meets_a_429_goes_on_as_the_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker("openai", MemoryBreakerStore(), BreakerConfig(1, 60), clock=clock.utc)
    breaker.record_failure()
    clock.advance(61)  # open period over: the next call is the half-open probe
    provider = ScriptedProvider([ProviderRateLimited("429", retry_after=1.0)])
    _, prov = engine(provider, breaker=breaker).generate("j", [TEXT], NotesTemplate.MEETING)
    assert [a.outcome for a in prov.attempts] == ["rate_limited", "ok"]
    assert prov.provider == "openai" and breaker.state().state is BreakerPosition.CLOSED


def test_asked_to_wait_an_outage_raises_but_bad_output_and_budget_fall_back() -> None:
    with pytest.raises(ProvidersDown):
        engine(ScriptedProvider([ServerError("500", status=500)] * 4)).generate(
            "j", [TEXT], NotesTemplate.MEETING, wait_for_provider=True
        )
    _, prov = engine(ScriptedProvider([BadOutput("invalid json")] * 2)).generate(
        "j", [TEXT], NotesTemplate.MEETING, wait_for_provider=True
    )
    assert prov.provider == "extractive"  # it answered: waiting would not help
    ledger = MemorySpendLedger()
    ledger.charge(Charge("c", "old", "openai", "gpt-4o-mini", Usage(), 5.0))
    _, prov = engine(ScriptedProvider([]), ledger=ledger, budget=5.0).generate(
        "j", [TEXT], NotesTemplate.MEETING, wait_for_provider=True
    )
    assert prov.provider == "extractive"  # over budget is policy, not an outage


def test_over_budget_goes_straight_to_the_fallback() -> None:
    ledger = MemorySpendLedger()
    ledger.charge(Charge("c", "old", "openai", "gpt-4o-mini", Usage(), 5.0))
    provider = ScriptedProvider([])
    _, prov = engine(provider, ledger=ledger, budget=5.0).generate(
        "j", [TEXT], NotesTemplate.MEETING
    )
    assert provider.keys_used == []
    assert [a.outcome for a in prov.attempts] == ["over_budget"]
    assert prov.provider == "extractive" and prov.fallback_reason == "openai: over_budget"


def test_long_transcripts_map_then_reduce() -> None:
    provider = ScriptedProvider([])
    eng = engine(provider)
    eng.chunk_tokens = 200
    pieces = [
        f"{('Anna', 'Ben', 'Carla')[i % 3]} will review item {i} by Friday. It was unit {i}."
        for i in range(48)
    ]
    notes, prov = eng.generate("j", pieces, NotesTemplate.MEETING)
    chunks = len(chunk_texts(pieces, 200))
    assert prov.chunks == chunks > 2
    assert prov.calls > chunks  # maps plus at least one reduce
    owners = {a.owner for a in notes.action_items}
    assert owners == {"Anna", "Ben", "Carla"}
    # items from the first and the last chunk both survive the reduce
    tasks = {a.task for a in notes.action_items}
    assert "Review item 0 by Friday" in tasks and "Review item 47 by Friday" in tasks


def test_long_transcripts_with_speakers_map_by_turns_and_keep_the_labels() -> None:
    seen: list[list[dict[str, Any]]] = []

    class Recording(ScriptedProvider):
        def complete(self, messages: list[dict[str, Any]], schema: type[Any], key: str) -> Any:
            seen.append(messages)
            return super().complete(messages, schema, key)

    eng = engine(Recording([]))
    eng.chunk_tokens = 200
    pieces = [
        f"SPEAKER_{i % 3 + 1}: I will review item {i} by Friday. It was unit {i}."
        for i in range(48)
    ]
    notes, prov = eng.generate("j", pieces, NotesTemplate.MEETING)
    assert prov.chunks == len(chunk_texts(pieces, 200)) > 2 and prov.calls > prov.chunks
    # Every request (maps and merges alike) says who spoke, by label.
    maps = [m for m in seen if parse_request(m)[0] is PromptKind.NOTES]
    merges = [m for m in seen if parse_request(m)[0] is PromptKind.MERGE]
    assert maps and merges
    assert all(parse_request(m)[2].startswith("SPEAKER_") for m in maps)
    assert all("'SPEAKER_1: what they said'" in m[0]["content"] for m in maps)
    assert all("keep them exactly as they are" in m[0]["content"] for m in merges)
    owners = {a.task: a.owner for a in notes.action_items}
    assert owners["Review item 0 by Friday"] == "SPEAKER_1"
    assert owners["Review item 47 by Friday"] == "SPEAKER_3"


def test_batches_group_only_short_transcripts_and_split_the_cost() -> None:
    provider = ScriptedProvider([])
    eng = engine(provider)
    eng.batch_item_max_tokens = 100
    eng.batch_max_items = 2
    items = [("a", TEXT), ("b", TEXT), ("c", TEXT), ("long", TEXT * 20)]
    assert eng.plan_batches(items) == [[0, 1], [3], [2]]


def test_empty_transcript_is_bad_input() -> None:
    from common.domain.errors import InvalidInput

    with pytest.raises(InvalidInput) as err:
        engine(ScriptedProvider([])).generate("j", ["  "], NotesTemplate.MEETING)
    assert err.value.code == "empty_transcript"


# webhooks -----------------------------------------------------------------------------------
def test_webhook_signature_verifies_and_rejects_tampering_and_staleness() -> None:
    body = b'{"job_id":"j"}'
    headers = {TIMESTAMP_HEADER: "1000", SIGNATURE_HEADER: sign(b"s3cret", 1000, body)}
    assert verify(b"s3cret", headers, body, now=1010)
    assert not verify(b"s3cret", headers, body + b" ", now=1010)
    assert not verify(b"other", headers, body, now=1010)
    assert not verify(b"s3cret", headers, body, now=5000)
