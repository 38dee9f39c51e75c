"""Nothing undoes an erasure: the interleavings a test can only reach by injection.

Each test lets an event's handler pass its tombstone check, then starts the person's erasure
at that very point and lets it run as far as it can before the handler goes on to write. With
the person's lock (shared/erasure/people.py) the erasure waits for the handler's writes and
then erases them; without it, the erasure would be done before the writes and the person would
be back. (Remove the `holding(...)` of a handler and its test here fails.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from faststream.rabbit import RabbitBroker

from services.consent.app import assemble as assemble_consent
from services.consent.settings import ConsentSettings
from services.consent.store import open_store as open_consent_store
from services.disclosure.store import open_store as open_disclosure_store
from services.orders.app import assemble as assemble_orders
from services.orders.settings import OrdersSettings
from services.orders.store import open_store as open_orders_store
from shared.contracts.disclosure_ops import ReleaseOrder
from shared.contracts.providers import AddProvider, ChangeProviderStatus
from shared.database import Database
from shared.erasure.people import PersonLocks, all_settled
from shared.erasure.records import SqliteErasureRecords
from tests.factories import full_person, item, order_placed, person
from tests.unit.support import disclosure_with_inbox
from tests.unit.test_erasure_services import AINO, ask, erase, send_erase
from tests.unit.test_services import HASH, in_memory, place, running

BEFORE = datetime.now(UTC) - timedelta(minutes=30)
"""When Aino's order was placed: long before her erasure."""


class Interleaving:
    """Starts the erasure the first time the handler reads a tombstone, and lets it run until
    it is done or waits for the person's lock."""

    def __init__(self) -> None:
        self.locks: list[PersonLocks] = []
        self.erasure: asyncio.Task[None] | None = None
        self._erase: Callable[[], Awaitable[None]] | None = None
        self._blocked = asyncio.Event()

    def arm(self, erase: Callable[[], Awaitable[None]]) -> None:
        self._erase = erase

    async def at_tombstone_check(self) -> None:
        if self._erase is None or self.erasure is not None:
            return
        for locks in self.locks:
            locks.on_wait = lambda subject: self._blocked.set()
        self.erasure = asyncio.create_task(self._erase())
        blocked = asyncio.create_task(self._blocked.wait())
        await asyncio.wait([self.erasure, blocked], return_when=asyncio.FIRST_COMPLETED)
        blocked.cancel()

    async def finished(self) -> None:
        assert self.erasure is not None, "the handler never checked a tombstone"
        await self.erasure
        assert self._blocked.is_set(), "the erasure waited for the handler's writes"


@pytest.fixture
def interleaving(monkeypatch: pytest.MonkeyPatch) -> Iterator[Interleaving]:
    injected = Interleaving()
    original_init = PersonLocks.__init__
    original_tombstones = SqliteErasureRecords.tombstones

    def recording_init(self: PersonLocks) -> None:
        original_init(self)
        injected.locks.append(self)

    async def tombstones(self: SqliteErasureRecords, subjects: Any) -> Any:
        found = await original_tombstones(self, subjects)
        await injected.at_tombstone_check()
        return found

    monkeypatch.setattr(PersonLocks, "__init__", recording_init)
    monkeypatch.setattr(SqliteErasureRecords, "tombstones", tombstones)
    yield injected


@pytest.fixture
async def orders(interleaving: Interleaving) -> AsyncIterator[tuple[RabbitBroker, Database]]:
    async with running(in_memory(OrdersSettings), assemble_orders) as running_service:
        yield running_service


@pytest.fixture
async def consent(interleaving: Interleaving) -> AsyncIterator[tuple[RabbitBroker, Database]]:
    async with running(in_memory(ConsentSettings), assemble_consent) as running_service:
        yield running_service


@pytest.fixture
async def disclosure(
    interleaving: Interleaving,
) -> AsyncIterator[tuple[RabbitBroker, Database, list[dict[str, Any]]]]:
    async with disclosure_with_inbox("spa-oy") as (broker, database, inbox):
        await ask(broker, "disclosure", AddProvider(provider_id="spa-oy", name="Spa", country="FI"))
        yield broker, database, inbox


def ainos_order() -> dict[str, Any]:
    return order_placed(
        buyer=full_person("Aino", "Virtanen", AINO),
        recipient=person("Eino", "K", "eino@example.fi"),
        items=[item("spa-oy")],
        occurred_at=BEFORE,
        newsletter=True,
    )


async def test_orders_an_erasure_between_the_tombstone_check_and_the_writes_erases_them(
    orders: tuple[RabbitBroker, Database], interleaving: Interleaving
) -> None:
    broker, database = orders
    interleaving.arm(lambda: send_erase(broker, "orders", erase(HASH(AINO))))
    order = ainos_order()
    await place(broker, order)
    await interleaving.finished()

    store = await open_orders_store(database)
    assert await store.profile("buyer", HASH(AINO)) is None
    assert await store.orders_of(HASH(AINO)) == []
    [kept] = await store.retained_orders(["req-1"])
    assert kept.order_id == order["order_id"] and kept.buyer is None


async def test_consent_an_erasure_between_the_tombstone_check_and_the_writes_erases_them(
    consent: tuple[RabbitBroker, Database], interleaving: Interleaving
) -> None:
    broker, database = consent
    interleaving.arm(lambda: send_erase(broker, "consent", erase(HASH(AINO))))
    await place(broker, ainos_order())
    await interleaving.finished()

    store = await open_consent_store(database)
    assert await store.person(HASH(AINO)) is None
    assert await store.facts_of(HASH(AINO)) == []
    assert await store.count_audience("newsletter") == 0, "not back on the newsletter list"


async def test_disclosure_an_erasure_during_a_disclosure_tells_the_provider_after_it(
    disclosure: tuple[RabbitBroker, Database, list[dict[str, Any]]],
    interleaving: Interleaving,
) -> None:
    broker, database, inbox = disclosure
    interleaving.arm(lambda: send_erase(broker, "disclosure", erase(HASH(AINO))))
    order = ainos_order()
    await place(broker, order)
    await interleaving.finished()

    # The disclosure went out before the erasure began; the notice follows it, naming it.
    assert [message["type"] for message in inbox] == ["disclosure", "erasure_notice"]
    assert inbox[1]["order_ids"] == [order["order_id"]]
    log = await (await open_disclosure_store(database)).log_of(order["order_id"])
    assert [entry.status for entry in log] == ["sent"]
    assert HASH(AINO) not in log[0].subjects and "erased:req-1" in log[0].subjects


async def test_disclosure_a_release_racing_the_erasure_that_cancels_it_sends_nothing(
    disclosure: tuple[RabbitBroker, Database, list[dict[str, Any]]],
    interleaving: Interleaving,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker, database, inbox = disclosure
    await ask(broker, "disclosure", ChangeProviderStatus(provider_id="spa-oy", status="suspended"))
    order = ainos_order()
    await place(broker, order)
    assert inbox == [], "held while the provider is suspended"
    await ask(broker, "disclosure", ChangeProviderStatus(provider_id="spa-oy", status="active"))

    # The release claims the disclosure; the erasure starts right then and cancels it.
    store_class = type(await open_disclosure_store(database))
    claim = store_class.claim_for_release

    async def claim_then_erasure(self: Any, disclosure_id: str, now: datetime) -> Any:
        claimed = await claim(self, disclosure_id, now)
        interleaving.arm(lambda: send_erase(broker, "disclosure", erase(HASH(AINO))))
        await interleaving.at_tombstone_check()
        return claimed

    monkeypatch.setattr(store_class, "claim_for_release", claim_then_erasure)
    released = await ask(broker, "disclosure", ReleaseOrder(order_id=order["order_id"]))
    assert interleaving.erasure is not None
    await interleaving.erasure

    assert released["sent"] == []
    assert inbox == [], "nothing sent: neither the disclosure nor a notice of it"
    [entry] = await (await open_disclosure_store(database)).log_of(order["order_id"])
    assert entry.status == "cancelled" and not entry.holds_data
    assert HASH(AINO) not in entry.subjects and "erased:req-1" in entry.subjects


async def test_a_failed_write_is_raised_only_after_the_persons_other_writes_have_finished() -> None:
    """Writes issued together under a person's lock: the lock is left (by the failure) only once
    none of them is still writing, or an erasure waiting for it could slip in before the last."""
    locks = PersonLocks()
    written: list[str] = []
    may_finish = asyncio.Event()

    async def failing_write() -> None:
        raise RuntimeError("the store refused one write")

    async def slower_write() -> None:
        await may_finish.wait()
        written.append("profile")

    async def event() -> None:
        async with locks.holding(["person-1"]):
            await all_settled(failing_write(), slower_write())

    handling = asyncio.create_task(event())
    await asyncio.sleep(0)  # the event holds the lock, its slower write is waiting
    erasure = asyncio.create_task(erase_when_free(locks, written))
    for _ in range(5):
        await asyncio.sleep(0)
    assert written == [], "the erasure must not run while a write of the event is unfinished"
    may_finish.set()
    with pytest.raises(RuntimeError, match="refused one write"):
        await handling
    await erasure
    assert written == ["profile", "erased"]


async def erase_when_free(locks: PersonLocks, written: list[str]) -> None:
    async with locks.holding(["person-1"]):
        written.append("erased")
