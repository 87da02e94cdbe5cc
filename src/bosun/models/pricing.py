"""Cost of a model call from its token usage.

Prices are US dollars per million tokens. The built-in table covers common
hosted models; a user overrides it per agent (`model.pricing`) or for a whole
runtime (`PriceTable({...})`). Unknown models cost 0 and say so once in the
journal's cost field being 0, never by guessing.
"""

from __future__ import annotations

from collections.abc import Mapping

from bosun.models.base import Usage
from bosun.spec.model import Pricing

DEFAULT_PRICES: dict[str, Pricing] = {
    "gpt-4o": Pricing(input_per_million=2.50, output_per_million=10.00),
    "gpt-4o-mini": Pricing(input_per_million=0.15, output_per_million=0.60),
    "gpt-4.1": Pricing(input_per_million=2.00, output_per_million=8.00),
    "gpt-4.1-mini": Pricing(input_per_million=0.40, output_per_million=1.60),
    "gpt-4.1-nano": Pricing(input_per_million=0.10, output_per_million=0.40),
    "o4-mini": Pricing(input_per_million=1.10, output_per_million=4.40),
    # Offline providers are priced like a small hosted model so demos show real-looking costs.
    "scripted": Pricing(input_per_million=0.15, output_per_million=0.60),
    "sim": Pricing(input_per_million=0.15, output_per_million=0.60),
}


class PriceTable:
    def __init__(self, prices: Mapping[str, Pricing] | None = None):
        self.prices = {**DEFAULT_PRICES, **(prices or {})}

    def price_of(self, model: str) -> Pricing | None:
        """Exact name, else the longest known prefix: servers answer with dated names
        such as `gpt-4o-mini-2024-07-18` for `gpt-4o-mini`."""
        price = self.prices.get(model)
        if price is not None:
            return price
        prefixes = [name for name in self.prices if model.startswith(name + "-")]
        return self.prices[max(prefixes, key=len)] if prefixes else None

    def cost(self, model: str, usage: Usage, override: Pricing | None = None) -> float:
        price = override or self.price_of(model)
        if price is None:
            return 0.0
        return (
            usage.input_tokens * price.input_per_million
            + usage.output_tokens * price.output_per_million
        ) / 1_000_000
