"""The orders the benchmarks send or store: one shape, as the web shop publishes it."""

from __future__ import annotations

from typing import Any

PROVIDERS = ("bench-spa", "bench-karting")
"""The benchmarks' providers; order `n` is for provider `n % 2`."""


def web_shop_order(
    number: int, *, event_id: str, order_id: str, email: str, occurred_at: str, newsletter: bool
) -> dict[str, Any]:
    """Order `number` as the web shop's `order.placed` JSON: a buyer with a full address, a
    recipient, one experience, and the buyer's answers to the consent boxes."""
    return {
        "event_id": event_id,
        "occurred_at": occurred_at,
        "order_id": order_id,
        "buyer": {
            "first_name": "Aino",
            "last_name": "Virtanen",
            "email": email,
            "phone": "+358 40 123 4567",
            "address": {
                "street": "Kauppakatu 1",
                "postal_code": "40100",
                "city": "Jyväskylä",
                "country": "FI",
            },
        },
        "recipient": {"first_name": "Eino", "last_name": "Korhonen"},
        "items": [
            {
                "product_id": "p-1",
                "title": "Experience",
                "provider_id": PROVIDERS[number % len(PROVIDERS)],
                "quantity": 1,
                "unit_price_cents": 4900,
            }
        ],
        "currency": "EUR",
        "consents": {"newsletter": newsletter, "marketing": False, "text_version": "v1"},
    }
