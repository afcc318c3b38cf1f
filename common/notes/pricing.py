"""Cost of a call: token usage, and compute seconds for a self-hosted model, times the price
table (longest matching model-name prefix)."""

from __future__ import annotations

from collections.abc import Mapping

from common.config.settings import ModelPrice
from common.domain.notes import Usage


def price_for(model: str, prices: Mapping[str, ModelPrice]) -> ModelPrice | None:
    """``gpt-4o-mini-2024-07-18`` is priced as ``gpt-4o-mini``, not as ``gpt-4o``."""
    matches = [name for name in prices if model == name or model.startswith(f"{name}-")]
    return prices[max(matches, key=len)] if matches else None


def cost_usd(usage: Usage, price: ModelPrice | None) -> float:
    if price is None:
        return 0.0
    tokens = (
        usage.prompt_tokens * price.input_per_mtok + usage.completion_tokens * price.output_per_mtok
    ) / 1_000_000
    return tokens + usage.compute_s * price.compute_usd_per_hour / 3600
