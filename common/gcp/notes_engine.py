"""Builds the provider chain from Settings (used by the composition root of ``notes``).

``links_from`` and ``engine_from`` take the stores they are given, so a benchmark builds the
same chain on in-memory ones; ``build_links`` and ``build_engine`` give them Firestore's.
"""

from __future__ import annotations

from collections.abc import Callable

from google.cloud import firestore

from common.config.settings import FallbackAuth, Llm, Settings
from common.domain.retry import Backoff
from common.gcp.breaker_store import FirestoreBreakerStore
from common.gcp.id_tokens import IdTokenSource, audience_of
from common.gcp.ledger_store import FirestoreSpendLedger
from common.notes.breaker import BreakerConfig, BreakerStore, CircuitBreaker
from common.notes.chain import NotesEngine, ProviderLink
from common.notes.keys import KeyRing
from common.notes.ledger import SpendLedger
from common.notes.providers import ChatProvider, RequestStyle
from common.notes.retry_rule import RetryPolicy

OPENAI = "openai"
FALLBACK = "fallback"
# Self-hosted servers ignore the key, but the client insists on one.
NO_KEY = "no-key"


def links_from(llm: Llm, store: BreakerStore) -> list[ProviderLink]:
    config = BreakerConfig(
        failure_threshold=llm.breaker_failure_threshold,
        open_s=llm.breaker_open_s,
        probe_lease_s=llm.breaker_probe_lease_s,
    )
    links: list[ProviderLink] = []
    if llm.openai_api_keys:
        links.append(
            ProviderLink(
                provider=ChatProvider(
                    OPENAI,
                    model=llm.model,
                    base_url=llm.openai_base_url,
                    style=RequestStyle.JSON_SCHEMA,
                    timeout_s=llm.request_timeout_s,
                    max_output_tokens=llm.max_output_tokens,
                ),
                keys=KeyRing([k.get_secret_value() for k in llm.openai_api_keys]),
                breaker=CircuitBreaker(OPENAI, store, config),
                prices=llm.prices,
            )
        )
    if llm.fallback_base_url:
        key = llm.fallback_api_key.get_secret_value() if llm.fallback_api_key else NO_KEY
        bearer = (
            IdTokenSource(audience_of(llm.fallback_base_url))
            if llm.fallback_auth is FallbackAuth.GOOGLE_ID_TOKEN
            else None
        )
        links.append(
            ProviderLink(
                provider=ChatProvider(
                    FALLBACK,
                    model=llm.fallback_model or llm.model,
                    base_url=llm.fallback_base_url,
                    style=RequestStyle(llm.fallback_style.value),
                    timeout_s=llm.fallback_request_timeout_s or llm.request_timeout_s,
                    max_output_tokens=llm.max_output_tokens,
                    bearer=bearer,
                ),
                keys=KeyRing([key]),
                breaker=CircuitBreaker(FALLBACK, store, config),
                # Priced only if the table names its model (our own server's are priced by
                # compute time; another self-hosted one usually is free).
                prices=llm.prices if llm.fallback_model else {},
                chunk_tokens=llm.fallback_chunk_tokens,
            )
        )
    return links


def engine_from(llm: Llm, links: list[ProviderLink], ledger: SpendLedger) -> NotesEngine:
    return NotesEngine(
        links,
        ledger,
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


def build_links(
    settings: Settings, client_factory: Callable[[], firestore.Client]
) -> list[ProviderLink]:
    store = FirestoreBreakerStore(client_factory, settings.collections.breakers)
    return links_from(settings.llm, store)


def build_engine(settings: Settings, client_factory: Callable[[], firestore.Client]) -> NotesEngine:
    llm = settings.llm
    ledger = FirestoreSpendLedger(
        client_factory, settings.collections.spend, shards=llm.spend_shards
    )
    return engine_from(llm, build_links(settings, client_factory), ledger)
