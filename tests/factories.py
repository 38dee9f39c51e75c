"""Order events and people for tests, built the way the web shop sends them."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

_sequence = itertools.count(1)


def person(first_name: str, last_name: str, email: str | None, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"first_name": first_name, "last_name": last_name, **extra}
    if email is not None:
        data["email"] = email
    return data


def full_person(first_name: str, last_name: str, email: str) -> dict[str, Any]:
    return person(
        first_name,
        last_name,
        email,
        phone="+358 40 123 4567",
        birth_date="1984-02-29",
        gender="female",
        address={
            "street": "Syrjälänkatu 2 B 9",
            "postal_code": "40700",
            "city": "Jyväskylä",
            "country": "FI",
        },
    )


def item(
    provider_id: str, product_id: str = "p-1", quantity: int = 1, price: int = 4900
) -> dict[str, Any]:
    return {
        "product_id": product_id,
        "title": f"Experience {product_id}",
        "provider_id": provider_id,
        "quantity": quantity,
        "unit_price_cents": price,
    }


def order_placed(
    *,
    order_id: str | None = None,
    buyer: dict[str, Any] | None = None,
    recipient: dict[str, Any] | None = None,
    items: list[dict[str, Any]] | None = None,
    occurred_at: datetime | None = None,
    newsletter: bool = True,
    marketing: bool = False,
) -> dict[str, Any]:
    number = next(_sequence)
    return {
        "event_id": str(uuid.uuid4()),
        "occurred_at": (occurred_at or datetime.now(UTC) - timedelta(seconds=1)).isoformat(),
        "order_id": order_id or f"KK-{number:06d}-{uuid.uuid4().hex[:6]}",
        "buyer": buyer or full_person("Aino", "Virtanen", f"aino.{number}@example.fi"),
        "recipient": recipient or person("Eino", "Korhonen", f"eino.{number}@example.fi"),
        "items": items or [item("spa-oy")],
        "currency": "EUR",
        "consents": {"newsletter": newsletter, "marketing": marketing, "text_version": "2026-01"},
    }


def _event(occurred_at: datetime | None) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "occurred_at": (occurred_at or datetime.now(UTC) - timedelta(seconds=1)).isoformat(),
    }


def consent_updated(
    email: str,
    *,
    newsletter: bool | None = None,
    marketing: bool | None = None,
    occurred_at: datetime | None = None,
    source: str = "account-page",
) -> dict[str, Any]:
    """Only the permissions given are in the event, as the web shop sends only what changed."""
    answers = {"newsletter": newsletter, "marketing": marketing}
    return {
        **_event(occurred_at),
        "email": email,
        **{purpose: granted for purpose, granted in answers.items() if granted is not None},
        "source": source,
        "text_version": "2026-01",
    }


def marketing_objection(
    email: str,
    *,
    objected: bool = True,
    occurred_at: datetime | None = None,
    source: str = "unsubscribe-link",
) -> dict[str, Any]:
    return {**_event(occurred_at), "email": email, "objected": objected, "source": source}


MISSING = object()
"""As a value for `changed`: remove the field."""


def changed(payload: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """`payload` with the field at a dotted path (`items.0.quantity`) set, or removed by MISSING."""
    target = payload
    *parents, leaf = path.split(".")
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is MISSING:
        del target[leaf]
    else:
        target[leaf] = value
    return payload


def erasure_requested(
    *, email: str, request_id: str | None = None, reason: str = "subject-request"
) -> dict[str, Any]:
    """The web shop's "delete my data" form, sent."""
    return {
        "event_id": str(uuid.uuid4()),
        "occurred_at": (datetime.now(UTC) - timedelta(seconds=1)).isoformat(),
        "request_id": request_id or f"WS-{uuid.uuid4().hex[:12]}",
        "email": email,
        "reason": reason,
    }
