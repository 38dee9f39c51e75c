"""The access report's parts beside the data (GDPR Art. 15(1)): purposes with their legal
bases, each category held with its period and the day it ends for the person, the sources and
the recipients by name, for a buyer, for a recipient named by email and for one named by their
order. The services as processes, the web shop and a provider over aio-pika, the real tool."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared.retention_policy import Category, RetentionSettings, retention_policy
from shared.topology import CONSENT_UPDATED, ORDER_PLACED, provider_queue_name
from tests.e2e.harness import QueueReader, Register, WebShop, eventually
from tests.e2e.support import add_provider, json_document
from tests.factories import consent_updated, item, order_placed, person

POLICY = retention_policy(RetentionSettings())
AINO = person("Aino", "Raportti", "aino.raportti@example.fi")
EINO = person("Eino", "Raportti", "eino.raportti@example.fi")
OTSO = person("Otso", "Raportti", None)  # a recipient the web shop has no email for


def report(staff_url: str, *naming: str) -> dict[str, Any]:
    return json_document(staff_url, "report", *naming)


def ends(category: Category, start: datetime) -> str:
    return POLICY[category].ends_on(start).isoformat()


def held(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(entry["category"], entry["service"]) for entry in document["retention"]}


async def test_the_report_says_why_how_long_from_where_and_to_whom(
    register: Register, staff_url: str, webshop_url: str, vhost_url: str
) -> None:
    add_provider(staff_url)
    placed = datetime.now(UTC) - timedelta(days=3)
    changed = datetime.now(UTC) - timedelta(minutes=1)
    gift = order_placed(buyer=AINO, recipient=EINO, items=[item("spa-oy")], occurred_at=placed)
    unnamed = order_placed(buyer=AINO, recipient=OTSO, items=[item("spa-oy")], occurred_at=placed)
    async with WebShop(webshop_url) as shop, QueueReader(vhost_url) as provider:
        for order in (gift, unnamed):
            await shop.publish(ORDER_PLACED, order)
        await shop.publish(
            CONSENT_UPDATED, consent_updated(AINO["email"], marketing=True, occurred_at=changed)
        )
        await provider.receive(provider_queue_name("spa-oy"), 2)

    # The buyer.
    aino = await eventually(
        lambda: report(staff_url, "--email", AINO["email"]),
        lambda r: (
            len(r["recipients"]) == 2
            and any(c["source"] == "account-page" for c in r["services"]["consent"]["history"])
        ),
    )
    assert [p["purpose"] for p in aino["purposes"]] == [
        "customer-relationship",
        "disclosure-to-provider",
        "direct-marketing",
        "accounting",
        "accountability",
    ]
    assert all(p["legal_basis"] for p in aino["purposes"])
    kept = {(e["category"], e["service"]): e for e in aino["retention"]}
    assert kept[("buyer", "orders")]["ends_on"] == ends(Category.BUYER, placed)
    assert kept[("buyer", "orders")]["period"] == "36 months"
    assert kept[("buyer", "consent")]["ends_on"] == ends(Category.BUYER, changed)
    assert held(aino) == {
        ("buyer", "orders"),
        ("buyer", "consent"),
        ("disclosure-log", "disclosure"),
        ("erasure-record", "erasure"),
        ("audit-log", "all"),
    }
    logged = [e for e in aino["retention"] if e["category"] == "disclosure-log"]
    assert sorted(e["order_id"] for e in logged) == sorted([gift["order_id"], unnamed["order_id"]])
    assert {e["ends_on"] for e in logged} == {ends(Category.DISCLOSURE_LOG, placed)}
    assert aino["sources"] == [
        {
            "source": "your own orders",
            "order_ids": sorted([gift["order_id"], unnamed["order_id"]]),
        },
        {
            "source": "your own choices in the web shop and with customer service",
            "channels": ["account-page", "checkout"],
        },
    ]
    assert {
        (r["provider_id"], r["name"], r["country"], r["order_id"]) for r in aino["recipients"]
    } == {
        ("spa-oy", "Kylpylä Oy", "FI", gift["order_id"]),
        ("spa-oy", "Kylpylä Oy", "FI", unnamed["order_id"]),
    }
    assert all(r["sent_at"] and "buyer.email" in r["fields"] for r in aino["recipients"])

    # A recipient named by their email: only the gift, as its recipient.
    eino = report(staff_url, "--email", EINO["email"], "--language", "fi")
    [gift_kept] = [e for e in eino["retention"] if e["category"] == "recipient"]
    assert gift_kept["order_id"] == gift["order_id"]
    assert gift_kept["ends_on"] == ends(Category.RECIPIENT, placed)
    assert gift_kept["period"] == "24 kuukautta"
    assert held(eino) == {
        ("recipient", "orders"),
        ("disclosure-log", "disclosure"),
        ("erasure-record", "erasure"),
        ("audit-log", "all"),
    }
    assert [p["purpose"] for p in eino["purposes"]] == [
        "customer-relationship",
        "disclosure-to-provider",
        "accountability",
    ]
    assert eino["sources"] == [
        {"source": f"tilauksen {gift['order_id']} ostaja", "order_id": gift["order_id"]}
    ]
    assert [(r["name"], r["order_id"]) for r in eino["recipients"]] == [
        ("Kylpylä Oy", gift["order_id"])
    ]

    # A recipient without an email, named by the order they are on.
    otso = report(staff_url, "--order", unnamed["order_id"], "--role", "recipient")
    assert otso["named_by"] == {"order_id": unnamed["order_id"], "role": "recipient"}
    assert otso["sources"] == [
        {"source": f"the buyer of order {unnamed['order_id']}", "order_id": unnamed["order_id"]}
    ]
    [recipient] = [e for e in otso["retention"] if e["category"] == "recipient"]
    assert recipient["order_id"] == unnamed["order_id"]
    assert [(r["provider_id"], r["order_id"]) for r in otso["recipients"]] == [
        ("spa-oy", unnamed["order_id"])
    ]
    assert "direct-marketing" not in [p["purpose"] for p in otso["purposes"]]
