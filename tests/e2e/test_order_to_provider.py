"""The walking skeleton end to end: web shop → RabbitMQ → four processes → provider's queue."""

from __future__ import annotations

import json

from services.consent.store import open_store as open_consent_store
from services.disclosure.store import open_store as open_disclosure_store
from services.orders.store import open_store as open_orders_store
from shared.contracts.disclosures import disclosure_id_for
from tests.e2e.harness import HASH, QueueReader, Register, WebShop, open_database, rekisteri
from tests.e2e.support import add_provider, run
from tests.factories import full_person, item, order_placed, person

DISCLOSURE_FIELDS = {
    "type",
    "disclosure_id",
    "order_id",
    "provider_id",
    "occurred_at",
    "buyer",
    "recipient",
    "items",
    "currency",
}


async def test_an_order_reaches_its_providers_queue_once_and_every_service_keeps_its_slice(
    register: Register, vhost_url: str, staff_url: str, webshop_url: str
) -> None:
    assert "disclosures.spa-oy" in add_provider(staff_url)
    refused = rekisteri(
        staff_url, "providers", "add", "us-spa", "--name", "US Spa", "--country", "US"
    )
    assert refused.returncode == 1
    assert "European Economic Area" in refused.stderr
    listed = run(staff_url, "providers", "list")
    assert "spa-oy" in listed and "us-spa" not in listed

    buyer = full_person("Aino", "Virtanen", "aino.virtanen@example.fi")
    order = order_placed(
        buyer=buyer,
        recipient=person("Eino", "Korhonen", "eino.korhonen@example.fi"),
        items=[item("spa-oy", "p-1"), item("unknown-oy", "p-2"), item("spa-oy", "p-3", 2)],
        newsletter=True,
        marketing=False,
    )
    marker = order_placed(items=[item("spa-oy", "p-9")])
    async with WebShop(webshop_url) as shop, QueueReader(vhost_url) as provider:
        await shop.publish("order.placed", order, message_id=order["event_id"])
        [message] = await provider.receive("disclosures.spa-oy", 1)
        disclosure = json.loads(message.body)
        assert set(disclosure) == DISCLOSURE_FIELDS
        assert disclosure["type"] == "disclosure"
        assert message.message_id == disclosure["disclosure_id"]
        assert disclosure["disclosure_id"] == str(disclosure_id_for(order["order_id"], "spa-oy"))
        assert message.delivery_mode == 2  # persistent
        assert [i["product_id"] for i in disclosure["items"]] == ["p-1", "p-3"]
        assert disclosure["buyer"] == buyer
        assert disclosure["recipient"]["email"] == "eino.korhonen@example.fi"

        # The same event again, then a later order: only the later one reaches the provider.
        await shop.publish("order.placed", order, message_id=order["event_id"])
        await shop.publish("order.placed", marker, message_id=marker["event_id"])
        [next_message] = await provider.receive("disclosures.spa-oy", 1)
        assert json.loads(next_message.body)["order_id"] == marker["order_id"]

    # A graceful stop finishes what is in flight, so nothing can still be on its way.
    assert register.stop() == {"orders": 0, "consent": 0, "disclosure": 0, "erasure": 0}
    async with QueueReader(vhost_url) as reader:
        assert await reader.depth("disclosures.spa-oy") == 0
        for service in ("orders", "consent", "disclosure"):
            assert await reader.depth(f"{service}.order-placed") == 0

    buyer_subject = HASH(buyer["email"])
    recipient_subject = HASH("eino.korhonen@example.fi")
    database = await open_database(register, "orders")
    try:
        orders = await open_orders_store(database)
        [kept] = await orders.orders_of(buyer_subject)
        customer = await orders.profile("buyer", buyer_subject)
        recipient = await orders.profile("recipient", recipient_subject)
    finally:
        await database.close()
    assert kept.order_id == order["order_id"] and kept.recipient_subject == recipient_subject
    assert [line.product_id for line in kept.lines] == ["p-1", "p-2", "p-3"]
    assert kept.total_cents == 4 * 4900
    assert customer is not None and customer.person["address"]["city"] == "Jyväskylä"
    assert recipient is not None

    database = await open_database(register, "consent")
    try:
        consent = await open_consent_store(database)
        consents = await consent.person(buyer_subject)
        assert await consent.person(recipient_subject) is None
    finally:
        await database.close()
    assert consents is not None
    assert consents.state.permissions["newsletter"].granted is True
    assert consents.state.permissions["marketing"].granted is False

    database = await open_database(register, "disclosure")
    try:
        log = {
            e.provider_id: e
            for e in await (await open_disclosure_store(database)).log_of(order["order_id"])
        }
    finally:
        await database.close()
    assert log["spa-oy"].status == "sent"
    assert "buyer.email" in (log["spa-oy"].fields or ())
    assert set(log["spa-oy"].subjects) == {buyer_subject, recipient_subject}
    assert not log["spa-oy"].holds_data
    assert log["unknown-oy"].status == "held" and log["unknown-oy"].holds_data
    assert log["unknown-oy"].hold_reason == "provider unknown-oy is not registered"


async def test_messages_that_cannot_be_handled_are_dead_lettered_with_the_reason(
    register: Register, vhost_url: str, staff_url: str, webshop_url: str
) -> None:
    add_provider(staff_url)
    broken = order_placed()
    broken["buyer"]["email"] = {"$gt": ""}
    valid = order_placed(items=[item("spa-oy")])
    async with WebShop(webshop_url) as shop, QueueReader(vhost_url) as reader:
        await shop.publish("order.placed", b"\xff not json", message_id="garbage")
        await shop.publish("order.placed", broken, message_id=broken["event_id"])
        await shop.publish("order.placed", valid, message_id=valid["event_id"])
        [disclosed] = await reader.receive("disclosures.spa-oy", 1)
        assert json.loads(disclosed.body)["order_id"] == valid["order_id"]

        dead = await reader.receive("dead-letter.orders.order-placed", 2)
        by_id = {m.message_id: m for m in dead}
        assert "Invalid JSON" in str(by_id["garbage"].headers["x-rejection-reason"])
        rejected = by_id[broken["event_id"]]
        assert "buyer.email" in str(rejected.headers["x-rejection-reason"])
        assert rejected.headers["x-original-routing-key"] == "order.placed"
        assert json.loads(rejected.body) == broken  # the message itself is kept, unchanged
    logs = register.logs()
    assert "Virtanen" not in logs and "Syrjälänkatu" not in logs
