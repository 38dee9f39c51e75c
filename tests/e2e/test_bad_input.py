"""Broken input from the web shop: each message dead-lettered with a reason, nothing blocked,
and operators can see, replay and purge dead letters with `rekisteri`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.e2e.harness import QueueReader, Register, WebShop, eventually, rekisteri
from tests.factories import MISSING, changed, full_person, item, order_placed

SECRET_VALUES = (
    "Virtanen",
    "aino.virtanen@example.fi",
    "Syrjälänkatu",
    "1984-02-29",
    "+358 40 123 4567",
)


def _order(**changes: Any) -> dict[str, Any]:
    order = order_placed(
        buyer=full_person("Aino", "Virtanen", "aino.virtanen@example.fi"), items=[item("spa-oy")]
    )
    for path, value in changes.items():
        changed(order, path.replace("__", "."), MISSING if value is None else value)
    return order


def catalogue() -> dict[str, bytes]:
    """message id → body of every kind of broken order.placed the register must survive."""
    future = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    as_json = {
        "missing-field": _order(buyer=None),
        "wrong-type": _order(items__0__quantity="1"),
        "operator-in-email": _order(buyer__email={"$gt": ""}),
        "birth-date-in-future": _order(buyer__birth_date=future),
        "negative-quantity": _order(items__0__quantity=-1),
        "name-too-long": _order(buyer__last_name="Ä" * 101),
        "unknown-field": _order(discount_code="XMAS"),
    }
    broken = {key: json.dumps(value).encode() for key, value in as_json.items()}
    broken["not-json"] = b"\xff\xfe this is not json"
    broken["latin-1"] = json.dumps(_order(), ensure_ascii=False).encode("latin-1")
    broken["oversized"] = json.dumps({**_order(), "padding": "x" * 300_000}).encode()
    return broken


async def test_broken_orders_are_dead_lettered_with_reasons_and_valid_ones_still_flow(
    register: Register, vhost_url: str, staff_url: str, webshop_url: str
) -> None:
    assert (
        rekisteri(
            staff_url, "providers", "add", "spa-oy", "--name", "Spa", "--country", "FI"
        ).returncode
        == 0
    )
    broken = catalogue()
    valid = [_order(buyer__last_name="Ääkkönen-Łódź-" + "ō" * 86) for _ in range(len(broken) + 1)]
    async with WebShop(webshop_url) as shop, QueueReader(vhost_url) as reader:
        for (message_id, body), good in zip(broken.items(), valid, strict=False):
            await shop.publish("order.placed", good, message_id=good["event_id"])
            await shop.publish("order.placed", body, message_id=message_id)
        await shop.publish("order.placed", valid[-1], message_id=valid[-1]["event_id"])
        await shop.publish("order.cancelled", _order(), message_id="unknown-routing-key")

        disclosed = await reader.receive("disclosures.spa-oy", len(valid))
        assert sorted(json.loads(m.body)["order_id"] for m in disclosed) == sorted(
            o["order_id"] for o in valid
        )

        for service in ("orders", "consent", "disclosure"):
            dead = await reader.receive(f"dead-letter.{service}.order-placed", len(broken))
            reasons = {m.message_id: str(m.headers["x-rejection-reason"]) for m in dead}
            assert set(reasons) == set(broken)
            assert all(m.body == broken[m.message_id] for m in dead), (
                "dead letters keep the message as sent"
            )
            for reason in reasons.values():
                assert not any(value in reason for value in SECRET_VALUES)
        assert "buyer: Field required" in reasons["missing-field"]
        assert "items.0.quantity" in reasons["wrong-type"]
        assert "buyer.email" in reasons["operator-in-email"]
        assert "must not be in the future" in reasons["birth-date-in-future"]
        assert "greater than or equal to 1" in reasons["negative-quantity"]
        assert "buyer.last_name" in reasons["name-too-long"]
        assert "discount_code: Extra inputs are not permitted" in reasons["unknown-field"]
        assert "Invalid JSON" in reasons["not-json"] and "Invalid JSON" in reasons["latin-1"]
        assert "the limit is 262144" in reasons["oversized"]
        [unroutable] = await reader.receive("dead-letter.webshop.unroutable", 1)
        assert unroutable.routing_key == "order.cancelled"

    logs = register.logs()
    assert not any(value in logs for value in SECRET_VALUES)


async def test_operators_list_replay_and_purge_dead_letters(
    register: Register, staff_url: str, webshop_url: str
) -> None:
    broken = catalogue()
    async with WebShop(webshop_url) as shop:
        for message_id, body in broken.items():
            await shop.publish("order.placed", body, message_id=message_id)

    def dead_letters(queue: str) -> list[dict[str, Any]]:
        listed = rekisteri(staff_url, "dlq", "list", "--queue", queue, "--json")
        assert listed.returncode == 0, listed.stderr
        assert not any(value in listed.stdout for value in SECRET_VALUES), "personal data shown"
        return json.loads(listed.stdout)

    listed = await eventually(
        lambda: dead_letters("orders.order-placed"), lambda rows: len(rows) == len(broken)
    )
    assert {row["message_id"] for row in listed} == set(broken)
    assert all(row["service"] == "orders" and row["reason"] for row in listed)
    operator_row = next(row for row in listed if row["message_id"] == "operator-in-email")
    assert (
        '"order_id":"KK-' in operator_row["preview"]
        and '"email":{"$gt":"***"}' in operator_row["preview"]
    )

    status = rekisteri(staff_url, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "DEAD LETTERS" in status.stdout and "NO CONSUMER" not in status.stdout

    # A replayed message goes through the service again: still broken, so it comes back, anew.
    replayed = rekisteri(staff_url, "dlq", "replay", operator_row["id"])
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 1 dead letter(s)" in replayed.stdout
    again = await eventually(
        lambda: [r for r in dead_letters("orders.order-placed") if r["id"] != operator_row["id"]],
        lambda rows: len(rows) == len(broken),
    )
    assert {row["message_id"] for row in again} == set(broken)
    # Judged as the web shop's again (the replay names its first sender), so refused for the
    # same reason as before, not as a message from the orders service.
    [replayed_row] = [row for row in again if row["message_id"] == "operator-in-email"]
    assert replayed_row["reason"] == operator_row["reason"]

    refused = rekisteri(
        staff_url, "dlq", "purge", "--queue", "orders.order-placed", input_text="n\n"
    )
    assert refused.returncode == 1 and len(dead_letters("orders.order-placed")) == len(broken)
    purged = rekisteri(staff_url, "dlq", "purge", "--queue", "orders.order-placed", "--yes")
    assert purged.returncode == 0 and f"purged {len(broken)} dead letter(s)" in purged.stdout
    assert dead_letters("orders.order-placed") == []
    # Other queues untouched (the consent service may still be dead-lettering the last ones).
    await eventually(
        lambda: dead_letters("consent.order-placed"), lambda rows: len(rows) == len(broken)
    )


async def test_status_flags_a_service_that_is_down(register: Register, staff_url: str) -> None:
    register.stop(["consent"])
    status = rekisteri(staff_url, "--timeout", "2", "status")
    assert status.returncode == 1
    assert "not answering: consent" in status.stderr
