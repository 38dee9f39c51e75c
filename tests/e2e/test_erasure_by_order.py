"""A gift-card recipient without an email, reported on and erased by the order they are on: the
services as processes against the real RabbitMQ, each with its own login, staff with the real
`rekisteri`, the web shop and a provider over plain aio-pika."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.topology import SERVICES
from tests.e2e import support
from tests.e2e.harness import QueueReader, Register, WebShop, eventually, rekisteri
from tests.e2e.test_erasure import quick_erasure_timing  # noqa: F401  the fixture applies here too
from tests.factories import item, order_placed, person

BUYER = "saara.ostaja@example.fi"
# The recipient's values, which no one else in these tests has: none may be left after.
EINO_VALUES = {
    "first_name": "Einomatti",
    "last_name": "Lahjansaaja-Bytest",
    "phone": "+358 50 246 8135",
    "birth_date": "1991-08-17",
    "street": "Lahjakuja 9 C 21",
}


def eino() -> dict[str, Any]:
    """Someone the web shop knows by name, phone, address and birth date, but not by email."""
    return support.person_of(EINO_VALUES, None, "33100", "Tampere")


def report_by_order(staff_url: str, order_id: str, role: str) -> dict[str, Any]:
    return support.json_document(staff_url, "report", "--order", order_id, "--role", role)


def holds_any_value(text: str) -> list[str]:
    return [value for value in EINO_VALUES.values() if value.lower() in text.lower()]


async def test_a_recipient_without_email_is_reported_on_and_erased_by_their_order(
    register: Register, vhost_url: str, staff_url: str, webshop_url: str
) -> None:
    support.add_provider(staff_url)
    gift = order_placed(
        buyer=person("Saara", "Ostaja", BUYER),
        recipient=eino(),
        items=[item("spa-oy", "p-spa")],
        occurred_at=datetime.now(UTC) - timedelta(minutes=5),
    )
    order_id = gift["order_id"]
    async with WebShop(webshop_url) as shop, QueueReader(vhost_url) as provider:
        await shop.publish("order.placed", gift)
        [disclosure] = await provider.receive("disclosures.spa-oy", 1)
        assert json.loads(disclosure.body)["recipient"]["last_name"] == EINO_VALUES["last_name"]

    # Staff find him by the order: his data in it, and who received it.
    before = await eventually(
        lambda: report_by_order(staff_url, order_id, "recipient"),
        lambda r: bool(r["services"]["orders"]["orders"]),
    )
    assert before["named_by"] == {"order_id": order_id, "role": "recipient"}
    [his] = before["services"]["orders"]["orders"]
    assert his["as_recipient"]["phone"] == EINO_VALUES["phone"]
    assert "as_buyer" not in his
    assert [d["provider_id"] for d in before["services"]["disclosure"]["sent"]] == ["spa-oy"]
    unknown = rekisteri(staff_url, "report", "--order", "KK-not-placed", "--role", "recipient")
    assert unknown.returncode == 1 and "order KK-not-placed is not known" in unknown.stderr

    written, receipt = support.erasure_receipt(
        staff_url, "--order", order_id, "--role", "recipient"
    )
    assert receipt["providers_notified"] == ["spa-oy"]
    assert receipt["services"]["orders"]["erased"]["orders stripped of personal data"] == 1
    assert holds_any_value(written) == []
    status = support.run(staff_url, "erasure", "status", receipt["request_id"])
    assert f"recipient of order {order_id}" in status

    # spa-oy is told to erase the recipient of that order: not its buyer.
    async with QueueReader(vhost_url) as provider:
        [notice] = await provider.receive("disclosures.spa-oy", 1)
    body = json.loads(notice.body)
    assert body["type"] == "erasure_notice" and body["order_ids"] == [order_id]
    assert body["roles"] == [{"order_id": order_id, "role": "recipient"}]

    # Named by the order again, nothing of him is shown: only the ledger kept, and why.
    after = report_by_order(staff_url, order_id, "recipient")
    assert after["subject"] == before["subject"]
    orders = after["services"]["orders"]
    assert orders["orders"] == [] and orders["erased_at"] is not None
    assert [kept["order_id"] for kept in orders["retained"]] == [order_id]
    assert after["services"]["disclosure"]["sent"] == []
    assert holds_any_value(json.dumps(after)) == []
    # The buyer keeps her data in the order.
    buyer = support.json_document(staff_url, "report", "--email", BUYER)
    [hers] = buyer["services"]["orders"]["orders"]
    assert hers["as_buyer"]["last_name"] == "Ostaja"

    # No file of any store holds his values, while the services run and after they stop.
    assert await support.values_stored(register, EINO_VALUES.values()) == {}
    assert register.stop() == dict.fromkeys(SERVICES, 0)
    assert await support.values_stored(register, EINO_VALUES.values()) == {}
    register.start()
