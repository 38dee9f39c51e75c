"""The orders store port, the same tests on every adapter (tests/conformance/conftest.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from services.orders.domain import LedgerLine, Order, Profile
from services.orders.store import OrdersStore, open_store
from shared.database import Database

PLACED = datetime(2025, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)
AINO, EINO = "subject-aino", "subject-eino"


def an_order(
    order_id: str,
    *,
    buyer: str | None = AINO,
    recipient: str | None = EINO,
    placed_at: datetime = PLACED,
) -> Order:
    return Order(
        order_id=order_id,
        event_id=f"event-{order_id}",
        placed_at=placed_at,
        recorded_at=placed_at + timedelta(seconds=1),
        currency="EUR",
        lines=[
            LedgerLine(
                product_id="p-1",
                title="Spa day",
                provider_id="spa-oy",
                quantity=2,
                unit_price_cents=4900,
            )
        ],
        total_cents=9800,
        buyer_subject=buyer,
        recipient_subject=recipient,
        buyer={"first_name": "Aino", "last_name": "Virtanen"} if buyer else None,
        recipient={"first_name": "Eino", "last_name": "Korhonen"},
    )


def a_profile(subject: str, as_of: datetime, last_name: str) -> Profile:
    return Profile(
        subject=subject,
        role="buyer",
        as_of=as_of,
        person={"first_name": "Aino", "last_name": last_name},
    )


async def test_an_order_is_kept_once_and_found_by_either_person(database: Database) -> None:
    store: OrdersStore = await open_store(database)
    order = an_order("KK-1")
    assert await store.add_order(order) is True
    assert await store.add_order(order.model_copy(update={"currency": "SEK"})) is False
    assert await store.orders_of(AINO) == [order]
    assert await store.orders_of(EINO) == [order]
    assert await store.orders_of("someone-else") == []


async def test_a_persons_orders_come_newest_first_whatever_their_role(database: Database) -> None:
    store = await open_store(database)
    old = an_order("KK-old", placed_at=PLACED - timedelta(days=30))
    gift = an_order("KK-gift", buyer="subject-other", recipient=AINO)
    new = an_order("KK-new", placed_at=PLACED + timedelta(days=1))
    for order in (gift, new, old):
        await store.add_order(order)
    assert [o.order_id for o in await store.orders_of(AINO)] == ["KK-new", "KK-gift", "KK-old"]


async def test_a_profile_takes_only_a_newer_events_data(database: Database) -> None:
    store = await open_store(database)
    assert await store.update_profile(a_profile(AINO, PLACED, "Virtanen")) is True
    assert await store.update_profile(a_profile(AINO, PLACED - timedelta(days=1), "Old")) is False
    assert await store.update_profile(a_profile(AINO, PLACED, "Same moment")) is False
    stored = await store.profile("buyer", AINO)
    assert stored == a_profile(AINO, PLACED, "Virtanen")
    assert await store.update_profile(a_profile(AINO, PLACED + timedelta(days=1), "Laine"))
    stored = await store.profile("buyer", AINO)
    assert stored is not None and stored.person["last_name"] == "Laine"
    assert await store.profile("recipient", AINO) is None


async def test_of_two_concurrent_profile_updates_the_newer_one_wins(database: Database) -> None:
    """The race a mock cannot show: on a real server both upserts may try to insert at once."""
    store = await open_store(database)
    for round_ in range(5):
        subject = f"subject-race-{round_}"
        older = a_profile(subject, PLACED, "Older")
        newer = a_profile(subject, PLACED + timedelta(seconds=1), "Newer")
        await asyncio.gather(store.update_profile(older), store.update_profile(newer))
        stored = await store.profile("buyer", subject)
        assert stored is not None and stored.person["last_name"] == "Newer"


async def test_erasing_a_person_strips_them_and_keeps_the_ledger(database: Database) -> None:
    store = await open_store(database)
    order = an_order("KK-1")
    await store.add_order(order)
    await store.update_profile(a_profile(AINO, PLACED, "Virtanen"))

    await store.erase_profiles(AINO)
    await store.erase_from_order(order, "buyer", "req-1")
    await store.erase_from_order(order, "buyer", "req-1")  # a repeat

    assert await store.profile("buyer", AINO) is None
    assert await store.orders_of(AINO) == []
    [stripped] = await store.retained_orders(["req-1"])
    assert stripped.buyer is None and stripped.buyer_subject is None
    assert stripped.lines == order.lines and stripped.total_cents == 9800
    assert stripped.erasures == ["req-1"]
    assert stripped.retention == {
        "basis": stripped.retention["basis"],  # type: ignore[index]
        "until": "2031-12-31",
    }
    assert stripped.kept_until is None, "Eino's data is still in it"
    assert await store.orders_of(EINO) == [stripped]


async def test_an_order_naming_nobody_is_deleted_only_after_its_retention(
    database: Database,
) -> None:
    store = await open_store(database)
    order = an_order("KK-1")
    kept = an_order("KK-2", recipient=None)
    for each in (order, kept, an_order("KK-3")):
        await store.add_order(each)
    await store.erase_from_order(order, "buyer", "req-1")
    await store.erase_from_order(order, "recipient", "req-2")
    [both] = await store.retained_orders(["req-1", "req-2"])
    assert both.kept_until == "2031-12-31" and both.erasures == ["req-1", "req-2"]

    assert await store.delete_expired_ledgers("2031-12-31") == 0
    assert await store.delete_expired_ledgers("2032-01-01") == 1
    assert await store.retained_orders(["req-1", "req-2"]) == []
    # Untouched: an order that still names someone.
    assert {o.order_id for o in await store.orders_of(AINO)} == {"KK-2", "KK-3"}


async def test_an_order_stored_already_stripped_is_found_by_its_erasure(
    database: Database,
) -> None:
    """A late order event of an erased person is stored without them (orders' domain)."""
    store = await open_store(database)
    late = an_order("KK-late", buyer=None).model_copy(
        update={"erasures": ["req-1"], "retention": {"basis": "x", "until": "2031-12-31"}}
    )
    await store.add_order(late)
    assert [o.order_id for o in await store.retained_orders(["req-1"])] == ["KK-late"]


async def test_times_come_back_as_stored_aware_utc_to_the_millisecond(
    database: Database,
) -> None:
    store = await open_store(database)
    await store.add_order(an_order("KK-1"))
    [order] = await store.orders_of(AINO)
    assert order.placed_at == PLACED and order.placed_at.utcoffset() == timedelta(0)
