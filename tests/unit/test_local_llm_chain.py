"""The chain's side of the self-hosted model: priced by compute time, charged but never
skipped for the budget, smaller chunks for its smaller context, and an ID token per call."""

from __future__ import annotations

from typing import Any

from openai.types import CompletionUsage

from common.config.settings import ModelPrice, Settings
from common.domain.jobs import NotesTemplate
from common.domain.notes import Usage
from common.gcp.id_tokens import IdTokenSource, audience_of
from common.gcp.notes_engine import build_links
from common.notes.breaker import BreakerConfig, CircuitBreaker, MemoryBreakerStore
from common.notes.chain import NotesEngine, ProviderLink
from common.notes.keys import KeyRing
from common.notes.ledger import MemorySpendLedger
from common.notes.pricing import cost_usd, price_for
from common.notes.providers import ChatProvider, Completion, RequestStyle, _usage
from emulators.openai_server import answer

LOCAL = "qwen2.5-coder-1.5b-instruct"
PRICES = {
    "gpt-4o-mini": ModelPrice(input_per_mtok=0.15, output_per_mtok=0.60),
    "qwen2.5-coder": ModelPrice(compute_usd_per_hour=0.36),
}


class Answering(ChatProvider):
    """Answers like the local double; records the transcript length of each request."""

    def __init__(self, name: str, model: str, compute_s: float = 10.0) -> None:
        super().__init__(
            name,
            model=model,
            base_url=None,
            style=RequestStyle.JSON_SCHEMA,
            timeout_s=1,
            max_output_tokens=1000,
        )
        self.compute_s = compute_s
        self.requests: list[str] = []

    def complete(self, messages: list[dict[str, Any]], schema: type[Any], key: str) -> Any:
        self.requests.append(str(messages[-1]["content"]))
        _, _, content = answer(messages)
        return Completion(
            parsed=schema.model_validate_json(content),
            usage=Usage(prompt_tokens=500, completion_tokens=200, compute_s=self.compute_s),
            model=self.model,
        )


def link(provider: ChatProvider, chunk_tokens: int | None = None) -> ProviderLink:
    return ProviderLink(
        provider=provider,
        keys=KeyRing(["k"]),
        breaker=CircuitBreaker(provider.name, MemoryBreakerStore(), BreakerConfig(3, 60)),
        prices=PRICES,
        chunk_tokens=chunk_tokens,
    )


def test_a_compute_priced_call_costs_its_seconds_at_the_hourly_price() -> None:
    price = price_for(LOCAL, PRICES)
    assert price == PRICES["qwen2.5-coder"]
    assert cost_usd(Usage(prompt_tokens=10**6, completion_tokens=10**6, compute_s=100), price) == (
        100 * 0.36 / 3600
    )
    # token-priced models pay nothing for time
    gpt = PRICES["gpt-4o-mini"]
    assert cost_usd(Usage(prompt_tokens=10**6, compute_s=3600), gpt) == 0.15


def test_the_local_model_is_charged_but_not_skipped_when_the_budget_is_spent() -> None:
    ledger = MemorySpendLedger(spent=100.0)
    openai_link = link(Answering("openai", "gpt-4o-mini"))
    local_link = link(Answering("fallback", LOCAL, compute_s=36.0))
    assert openai_link.billable and not local_link.billable
    engine = NotesEngine([openai_link, local_link], ledger, daily_budget_usd=50.0)
    _, prov = engine.generate(
        "job-1", ["Anna will send the budget by Friday."], NotesTemplate.MEETING
    )
    assert prov.provider == "fallback" and prov.fallback_reason == "openai: over_budget"
    assert [a.outcome for a in prov.attempts] == ["over_budget", "ok"]
    assert prov.usage.compute_s == 36.0
    assert prov.cost_usd == round(36.0 * 0.36 / 3600, 8)
    (charge,) = ledger.charges.values()
    assert charge.provider == "fallback" and charge.usd == prov.cost_usd


def test_its_spend_counts_toward_the_budget_the_priced_provider_is_gated_by() -> None:
    ledger = MemorySpendLedger(spent=0.0)
    local_only = NotesEngine([link(Answering("fallback", LOCAL, compute_s=3600.0))], ledger)
    local_only.generate("job-1", ["We decided to ship."], NotesTemplate.MEETING)
    assert ledger.spent_usd() == 0.36
    both = NotesEngine(
        [link(Answering("openai", "gpt-4o-mini")), link(Answering("fallback", LOCAL))],
        ledger,
        daily_budget_usd=0.30,
    )
    _, prov = both.generate("job-2", ["We decided to ship."], NotesTemplate.MEETING)
    assert prov.provider == "fallback"


def test_a_provider_with_a_smaller_context_gets_smaller_chunks() -> None:
    pieces = [f"SPEAKER_1: sentence number {i} about the budget and the plan." for i in range(400)]
    small = Answering("fallback", LOCAL)
    engine = NotesEngine(
        [link(small, chunk_tokens=1_000)], MemorySpendLedger(), chunk_tokens=12_000
    )
    _, prov = engine.generate("job-1", pieces, NotesTemplate.MEETING)
    maps = [r for r in small.requests if r.startswith("TRANSCRIPT")]
    assert prov.chunks == len(maps) > 1
    assert max(len(r) for r in maps) < 1_000 * 6  # about 4 characters a token, and headroom
    big = Answering("openai", "gpt-4o-mini")
    _, prov = NotesEngine([link(big)], MemorySpendLedger(), chunk_tokens=12_000).generate(
        "job-2", pieces, NotesTemplate.MEETING
    )
    assert prov.chunks == 1


def test_batches_are_planned_to_fit_the_smallest_context_of_the_chain() -> None:
    items = [(f"j{i}", "word " * 400) for i in range(6)]  # ~500 tokens each
    wide = NotesEngine([link(Answering("openai", "gpt-4o-mini"))], MemorySpendLedger())
    narrow = NotesEngine(
        [link(Answering("openai", "gpt-4o-mini")), link(Answering("fallback", LOCAL), 1_200)],
        MemorySpendLedger(),
    )
    assert wide.plan_batches(items) == [[0, 1, 2, 3, 4, 5]]
    assert all(len(group) <= 2 for group in narrow.plan_batches(items))


def test_usage_takes_the_servers_compute_seconds_else_the_measured_time() -> None:
    reported = CompletionUsage.model_validate(
        {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12, "compute_s": 4.25}
    )
    assert _usage(reported, [], "{}", started=0.0).compute_s == 4.25
    plain = CompletionUsage(prompt_tokens=5, completion_tokens=7, total_tokens=12)
    import time

    measured = _usage(plain, [], "{}", started=time.monotonic() - 2.0).compute_s
    assert 2.0 <= measured < 10.0


def test_an_id_token_is_minted_for_the_service_url_and_reused_until_near_expiry() -> None:
    assert audience_of("https://llm-abc-uc.a.run.app/v1") == "https://llm-abc-uc.a.run.app"
    now = [0.0]
    minted: list[str] = []

    def fetch(audience: str) -> str:
        minted.append(audience)
        return f"token-{len(minted)}"

    source = IdTokenSource("https://llm.example", fetch=fetch, clock=lambda: now[0])
    assert source() == source() == "token-1"
    now[0] = 3400.0  # within five minutes of the hour
    assert source() == "token-2"
    assert minted == ["https://llm.example", "https://llm.example"]


def test_build_links_wires_the_fallback_settings() -> None:
    settings = Settings(
        project="audionotes-test",
        buckets={"inbox": "test-inbox", "results": "test-results"},
        llm={
            "fallback_base_url": "https://llm.internal.example/v1",
            "fallback_model": LOCAL,
            "fallback_style": "json_schema",
            "fallback_auth": "google_id_token",
            "fallback_request_timeout_s": 900,
            "fallback_chunk_tokens": 3000,
        },
    )
    (fallback,) = build_links(settings, lambda: None)  # type: ignore[arg-type,return-value]
    provider = fallback.provider
    assert provider.style is RequestStyle.JSON_SCHEMA
    assert provider.timeout_s == 900 and fallback.chunk_tokens == 3000
    assert isinstance(provider.bearer, IdTokenSource)
    assert provider.bearer.audience == "https://llm.internal.example"
    assert fallback.price is not None and fallback.price.compute_usd_per_hour > 0
