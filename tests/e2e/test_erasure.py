"""Erasure and access requests end to end: the services as processes, the web shop and the
providers over plain aio-pika, staff with the real `rekisteri`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.contracts.disclosures import erasure_notice_id_for
from shared.contracts.fields import CLOCK_SKEW
from shared.topology import SERVICES
from tests.e2e.harness import QueueReader, Register, WebShop, eventually
from tests.e2e.support import (
    add_provider,
    erasure_receipt,
    json_document,
    person_of,
    run,
    values_stored,
)
from tests.factories import erasure_requested, item, order_placed, person

AINO = "aino.erasetest@example.fi"
# Values no one else in these tests has: none may be left anywhere after her erasure.
AINO_VALUES = {
    "first_name": "Ainomaria",
    "last_name": "Virtanen-Erasetest",
    "email": AINO,
    "phone": "+358 40 765 4321",
    "birth_date": "1979-07-13",
    "street": "Poistokatu 5 B 7",
}
PROVIDERS = ("spa-oy", "kart-oy")


def aino() -> dict[str, Any]:
    return person_of(AINO_VALUES, AINO, "40100", "Jyväskylä", gender="female")


@pytest.fixture(autouse=True)
def quick_erasure_timing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Seconds instead of hours: the services started by the test inherit these."""
    monkeypatch.setenv("ERASURE_RETRY_FIRST", "PT1S")
    monkeypatch.setenv("ERASURE_RETRY_MAX", "PT2S")
    monkeypatch.setenv("ERASURE_STUCK_AFTER", "PT30S")
    monkeypatch.setenv("ERASURE_CHECK_INTERVAL", "PT0.2S")
    yield


def report_of(staff_url: str, email: str) -> dict[str, Any]:
    return json_document(staff_url, "report", "--email", email)


def status_of(staff_url: str, request_id: str) -> dict[str, Any]:
    return json_document(staff_url, "erasure", "status", request_id, "--json")


def consent_event(email: str, occurred_at: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "occurred_at": occurred_at.isoformat(),
        "email": email,
        **fields,
    }


async def test_an_erased_person_is_gone_everywhere_but_the_ledger_and_never_comes_back(
    register: Register, vhost_url: str, staff_url: str, webshop_url: str
) -> None:
    for provider in PROVIDERS:
        add_provider(staff_url, provider, provider)
    placed = datetime.now(UTC) - timedelta(minutes=5)
    own = order_placed(
        buyer=aino(),
        recipient=person("Eino", "Korhonen", "eino.korhonen@example.fi"),
        items=[item("spa-oy", "p-spa"), item("kart-oy", "p-kart")],
        occurred_at=placed,
        newsletter=True,
        marketing=True,
    )
    gift = order_placed(
        recipient=person(AINO_VALUES["first_name"], AINO_VALUES["last_name"], AINO),
        items=[item("kart-oy", "p-gift")],
        occurred_at=placed + timedelta(seconds=1),
    )
    objection = consent_event(
        AINO, placed + timedelta(minutes=1), objected=True, source="unsubscribe-link"
    )
    # Her data in a dead-letter queue of every order consumer, and someone else's that stays.
    broken = order_placed(buyer=aino())
    broken["currency"] = "euro"
    someone_broken = order_placed()
    someone_broken["currency"] = "euro"
    async with WebShop(webshop_url) as shop, QueueReader(vhost_url) as providers:
        for order in (own, gift, broken, someone_broken):
            await shop.publish("order.placed", order)
        await shop.publish("marketing.objection", objection)
        assert len(await providers.receive("disclosures.spa-oy", 1)) == 1
        assert len(await providers.receive("disclosures.kart-oy", 2)) == 2

    before = await eventually(
        lambda: report_of(staff_url, AINO),
        lambda r: r["services"]["consent"]["objection"] is not None,
    )
    assert before["services"]["orders"]["profiles"]["buyer"]["data"]["email"] == AINO
    assert {o["order_id"] for o in before["services"]["orders"]["orders"]} == {
        own["order_id"],
        gift["order_id"],
    }
    assert len(before["services"]["disclosure"]["sent"]) == 3
    await eventually(
        lambda: json.loads(run(staff_url, "dlq", "list", "--json")),
        lambda rows: len(rows) == 6,
    )

    written, receipt = erasure_receipt(staff_url, "--email", AINO)
    assert receipt["reason"] == "subject-request"
    assert receipt["providers_notified"] == ["kart-oy", "spa-oy"]
    orders_part = receipt["services"]["orders"]
    assert orders_part["erased"]["orders stripped of personal data"] == 2
    [ledger] = orders_part["kept"]
    assert sorted(ledger["order_ids"]) == sorted([own["order_id"], gift["order_id"]])
    assert ledger["until"] == f"{placed.year + 6}-12-31"
    assert receipt["services"]["consent"]["kept"][0]["what"].startswith("suppression")
    dead_letters = sum(part["erased"]["dead letters"] for part in receipt["services"].values())
    assert dead_letters == 3
    assert AINO_VALUES["last_name"].lower() not in written.lower()
    assert AINO not in written

    async with QueueReader(vhost_url) as providers:
        for provider, orders in (("spa-oy", [own]), ("kart-oy", [own, gift])):
            [notice] = await providers.receive(f"disclosures.{provider}", 1)
            body = json.loads(notice.body)
            assert body["type"] == "erasure_notice" == notice.type
            assert sorted(body["order_ids"]) == sorted(o["order_id"] for o in orders)
            request_id = receipt["request_id"]
            assert notice.message_id == str(erasure_notice_id_for(request_id, provider))

    after = report_of(staff_url, AINO)
    orders_now = after["services"]["orders"]
    assert (orders_now["profiles"], orders_now["orders"]) == ({}, [])
    assert sorted(o["order_id"] for o in orders_now["retained"]) == sorted(
        [own["order_id"], gift["order_id"]]
    )
    assert after["services"]["consent"]["history"] == []
    assert after["services"]["consent"]["suppressed_since"] is not None
    assert after["services"]["disclosure"]["sent"] == []
    assert len(after["services"]["disclosure"]["retained"]) == 3
    assert AINO_VALUES["last_name"].lower() not in json.dumps(after).lower()
    rows = json.loads(run(staff_url, "dlq", "list", "--json"))
    assert len(rows) == 3 and all(row["message_id"] != broken["event_id"] for row in rows)
    audience = run(staff_url, "marketing", "audience", "--purpose", "newsletter")
    assert AINO not in audience

    # Nothing of hers is left in any file of any store, while the services run (SQLite: not in
    # a free page, not in the write-ahead log) and after they stop.
    assert await values_stored(register, AINO_VALUES.values()) == {}
    assert register.stop() == dict.fromkeys(SERVICES, 0)
    async with QueueReader(vhost_url) as providers:
        for provider in PROVIDERS:  # one notice each, and nothing else
            assert await providers.depth(f"disclosures.{provider}") == 0
    assert await values_stored(register, AINO_VALUES.values()) == {}
    register.start()

    # The old order and a late permission change again change nothing; her new order does.
    late = consent_event(
        AINO,
        placed + timedelta(minutes=2),
        newsletter=True,
        source="account-page",
        text_version="2026-01",
    )
    marker = order_placed(items=[item("spa-oy", "p-marker")])
    # An order stamped within the web shop's allowed clock skew after the erasure may have been
    # placed before it, and is buried; hers is stamped just past that (as far ahead of now as a
    # web shop's clock may run: more than a second has passed since the erasure).
    erased_at = datetime.fromisoformat(after["services"]["orders"]["erased_at"])
    new = order_placed(
        buyer=aino(),
        items=[item("spa-oy", "p-new")],
        marketing=True,
        occurred_at=erased_at + CLOCK_SKEW + timedelta(seconds=1),
    )
    async with WebShop(webshop_url) as shop, QueueReader(vhost_url) as providers:
        await shop.publish("order.placed", own)
        await shop.publish("consent.updated", late)
        await shop.publish("order.placed", marker)
        [next_one] = await providers.receive("disclosures.spa-oy", 1)
        assert json.loads(next_one.body)["order_id"] == marker["order_id"]
        await shop.publish("order.placed", new)
        [again] = await providers.receive("disclosures.spa-oy", 1)
        assert json.loads(again.body)["buyer"]["email"] == AINO
    afterwards = await eventually(
        lambda: report_of(staff_url, AINO),
        lambda r: r["services"]["consent"]["history"] != [],
    )
    assert [o["order_id"] for o in afterwards["services"]["orders"]["orders"]] == [new["order_id"]]
    assert afterwards["services"]["orders"]["retained"] == after["services"]["orders"]["retained"]
    # She objected before the erasure: her new checkbox does not put her back on a list.
    assert afterwards["services"]["consent"]["may_contact"] == []
    assert AINO not in run(staff_url, "marketing", "audience", "--purpose", "marketing")


async def test_an_erasure_waiting_for_a_stopped_service_is_stuck_then_completes(
    register: Register, staff_url: str, webshop_url: str
) -> None:
    register.stop(["erasure"])
    register.extra_env["ERASURE_STUCK_AFTER"] = "PT2S"
    register.start(["erasure"])
    async with WebShop(webshop_url) as shop:
        await shop.publish("order.placed", order_placed(buyer=aino()))
    await eventually(
        lambda: report_of(staff_url, AINO), lambda r: r["services"]["orders"]["orders"] != []
    )
    register.stop(["consent"])

    requested = run(staff_url, "erasure", "request", "--email", AINO, "--reason", "misuse")
    request_id = requested.split()[2].rstrip(":")
    stuck = await eventually(
        lambda: status_of(staff_url, request_id), lambda s: s["status"] == "stuck"
    )
    assert stuck["missing"] == ["consent"] and "receipt" not in stuck
    assert stuck["stuck_since"] is not None
    assert "stuck (waiting for consent)" in run(staff_url, "erasure", "list", "--open")

    register.start(["consent"])
    done = await eventually(
        lambda: status_of(staff_url, request_id), lambda s: s["status"] == "completed"
    )
    assert done["receipt"]["reason"] == "misuse"
    assert set(done["receipt"]["services"]) == {"orders", "consent", "disclosure", "erasure"}
    assert run(staff_url, "erasure", "list", "--open").strip() == "(none)"


async def test_duplicate_requests_are_one_erasure_and_an_unknown_person_completes_with_nothing(
    register: Register, vhost_url: str, staff_url: str, webshop_url: str
) -> None:
    add_provider(staff_url, "spa-oy", "Spa")
    async with WebShop(webshop_url) as shop, QueueReader(vhost_url) as providers:
        await shop.publish("order.placed", order_placed(buyer=aino(), items=[item("spa-oy")]))
        await providers.receive("disclosures.spa-oy", 1)
        form = erasure_requested(email=AINO)
        for _ in range(2):
            await shop.publish("erasure.requested", form)
        await shop.publish("erasure.requested", {**form, "event_id": str(uuid.uuid4())})
        done = await eventually(
            lambda: status_of(staff_url, form["request_id"]),
            lambda s: s["status"] == "completed",
        )
        assert done["requested_by"] == "webshop" and done["receipt"]["providers_notified"] == [
            "spa-oy"
        ]
        [notice] = await providers.receive("disclosures.spa-oy", 1)
        assert json.loads(notice.body)["type"] == "erasure_notice"

        # Staff ask again: a new request, which finds nothing left and tells no provider again.
        _, receipt = erasure_receipt(staff_url, "--email", AINO)
        assert receipt["providers_notified"] == []

    _, receipt = erasure_receipt(staff_url, "--email", "nobody@example.fi")
    assert all(
        count == 0 for part in receipt["services"].values() for count in part["erased"].values()
    )
    assert receipt["providers_notified"] == []

    requests = json.loads(run(staff_url, "erasure", "list", "--json"))
    assert [r["type"] for r in requests] == ["erasure", "erasure", "erasure"]
    report = report_of(staff_url, AINO)
    kinds = [(r["type"], r["source"]) for r in report["services"]["erasure"]["requests"]]
    assert kinds == [("erasure", "webshop"), ("erasure", "ops"), ("access", "ops")]

    assert register.stop() == dict.fromkeys(SERVICES, 0)
    async with QueueReader(vhost_url) as providers:  # one notice for all those requests
        assert await providers.depth("disclosures.spa-oy") == 0
