"""The web shop's `order.placed` contract is validated strictly, with reasons that name no values."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from shared.contracts.webshop import OrderPlaced
from shared.messaging import InvalidMessage, decode, describe_validation_error
from tests.factories import MISSING, changed, full_person, item, order_placed

ADAPTER = TypeAdapter(OrderPlaced)
LIMIT = 256 * 1024


def decode_order(payload: dict[str, Any] | bytes) -> OrderPlaced:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return decode(body, ADAPTER, LIMIT)


def test_a_complete_order_is_accepted_as_sent() -> None:
    payload = order_placed(items=[item("spa-oy"), item("kart-oy", "p-2", quantity=2)])
    order = decode_order(payload)
    assert order.order_id == payload["order_id"]
    assert order.buyer.address is not None and order.buyer.address.city == "Jyväskylä"
    assert order.provider_ids() == ["spa-oy", "kart-oy"]
    assert [i.product_id for i in order.items_for("kart-oy")] == ["p-2"]


def test_a_recipient_without_email_is_accepted() -> None:
    payload = order_placed(recipient={"first_name": "Eino", "last_name": "Korhonen"})
    assert decode_order(payload).recipient.email is None


def _with(path: str, value: Any) -> dict[str, Any]:
    return changed(
        order_placed(buyer=full_person("Aino", "Virtanen", "aino@example.fi")), path, value
    )


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        ("buyer.email", {"$gt": ""}, "buyer.email"),
        ("buyer.email", "not-an-email", "buyer.email"),
        ("buyer.email", MISSING, "buyer.email: Field required"),
        ("buyer.birth_date", (datetime.now(UTC) + timedelta(days=2)).date().isoformat(), "future"),
        ("buyer.birth_date", "1850-01-01", "buyer.birth_date"),
        ("buyer.gender", "unknown", "buyer.gender"),
        ("buyer.address.country", "XX", "ISO 3166-1"),
        ("buyer.first_name", "A" * 101, "buyer.first_name"),
        ("buyer.first_name", "Ai\x00no", "control characters"),
        ("items.0.quantity", -1, "items.0.quantity"),
        ("items.0.quantity", "1", "items.0.quantity"),
        ("items.0.provider_id", "Spa Oy/../x", "items.0.provider_id"),
        ("items", [], "items"),
        ("consents.newsletter", 1, "consents.newsletter"),
        ("occurred_at", "2026-11-24T10:00:00", "occurred_at"),
        ("occurred_at", (datetime.now(UTC) + timedelta(days=1)).isoformat(), "future"),
        ("event_id", "not-a-uuid", "event_id"),
        ("surprise", "field", "surprise: Extra inputs are not permitted"),
    ],
)
def test_invalid_orders_are_refused_with_a_reason_that_names_the_field(
    path: str, value: Any, reason: str
) -> None:
    with pytest.raises(InvalidMessage) as refused:
        decode_order(_with(path, value))
    assert reason in refused.value.reason
    assert "aino@example.fi" not in refused.value.reason
    assert "Syrjälänkatu" not in refused.value.reason


def test_unicode_names_at_the_limit_are_accepted() -> None:
    name = "Ääkkönen-Ōsaka-Łódź-" + "é" * 80
    assert len(name) == 100
    payload = _with("buyer.last_name", name)
    assert decode_order(payload).buyer.last_name == name


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "Invalid JSON"),
        ("{}".encode("utf-16"), "Invalid JSON"),
        (b"[1, 2]", "Input should be an object"),
    ],
)
def test_bodies_that_are_not_an_order_object_are_refused(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidMessage) as refused:
        decode_order(body)
    assert reason in refused.value.reason


def test_oversized_messages_are_refused_before_parsing() -> None:
    with pytest.raises(InvalidMessage, match="the limit is"):
        decode(b"{" + b" " * LIMIT + b"}", ADAPTER, LIMIT)


def test_one_character_too_long_is_refused() -> None:
    with pytest.raises(InvalidMessage, match=r"buyer\.last_name"):
        decode_order(_with("buyer.last_name", "Ä" * 101))


def test_the_example_order_in_the_documentation_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "docs" / "examples" / "order-placed.json"
    order = decode_order(example.read_bytes())
    assert order.provider_ids() == ["kylpyla-oy", "kartingrata-oy"]


def test_a_rejection_reason_never_quotes_a_key_or_a_value_it_was_sent() -> None:
    class Event(BaseModel):
        model_config = ConfigDict(extra="forbid")
        event_id: uuid.UUID
        counts: dict[str, int] = {}

    body = '{"event_id": "aino-1984", "aino@virtanen.fi": 1, "counts": {"Aino Virtanen": "x"}}'
    with pytest.raises(ValidationError) as raised:
        Event.model_validate_json(body)
    reason = describe_validation_error(raised.value)
    assert "event_id: Input should be a valid UUID" in reason
    assert "<key>: Extra inputs are not permitted" in reason
    assert "counts.<key>: Input should be a valid integer" in reason
    for value in ("aino", "1984", "Virtanen", "virtanen.fi"):
        assert value.lower() not in reason.lower(), value
