"""Each service's daily retention sweep, run with an injected clock: on the last day a
retention covers nothing goes, on the day after exactly what expired goes, and the preview of a
day counts what that day's sweep deletes. The services run on FastStream's test broker with
the embedded store in memory; the people's events are dated from today, so the sweeps run on
days computed from the policy. (Dead letters need a real broker: tests/e2e/test_retention.py.)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from faststream.rabbit import RabbitBroker
from prometheus_client import REGISTRY

from services.consent.domain import PermissionFact
from services.consent.store import open_store as open_consent_store
from services.disclosure.store import open_store as open_disclosure_store
from services.erasure.app import assemble as assemble_erasure
from services.erasure.settings import ErasureSettings
from services.erasure.store import open_store as open_erasure_store
from services.orders.app import assemble as assemble_orders
from services.orders.settings import OrdersSettings
from services.orders.store import open_store as open_orders_store
from shared import topology
from shared.contracts.consent import Contact, ExportAudience
from shared.contracts.erasure import ReportSubject
from shared.contracts.providers import AddProvider
from shared.contracts.runtime import PreviewRetention
from shared.database import Database
from shared.dead_letters import QueueInspector
from shared.retention_policy import Category, RetentionSettings, retention_policy
from shared.retention_sweep import RETENTION_SWEEP, RetentionSweep
from shared.sqlite import SqliteDatabase
from tests.factories import consent_updated, item, marketing_objection, order_placed, person
from tests.unit.support import disclosure_with_inbox
from tests.unit.test_consent_service import consent_service
from tests.unit.test_erasure_services import ask
from tests.unit.test_services import HASH, in_memory, place, running

POLICY = retention_policy(RetentionSettings())
AINO, EINO, OTTO = "aino@example.fi", "eino@example.fi", "otto@example.fi"
NAMES = ("Aino", "Eino", "Otto", "Virtanen", AINO, EINO, OTTO)


@pytest.fixture(autouse=True)
def no_dead_letter_queues(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a broker there are no dead-letter queues to sweep."""

    async def none_found(self: QueueInspector, before: datetime, *, delete: bool) -> int:
        return 0

    monkeypatch.setattr(QueueInspector, "expire", none_found)


def at(day: date) -> datetime:
    """Noon in Helsinki on `day`, when a sweep might run."""
    return datetime(day.year, day.month, day.day, 10, tzinfo=UTC)


def sweep_of(broker: RabbitBroker) -> RetentionSweep:
    sweep = broker.context.get(RETENTION_SWEEP)
    assert isinstance(sweep, RetentionSweep)
    return sweep


async def sweep_on(broker: RabbitBroker, day: date) -> dict[str, int]:
    """The sweep of `day`, after checking that its preview counted exactly what it then
    deletes; the categories it deleted anything of."""
    preview = await sweep_of(broker).preview(day)
    deleted = await sweep_of(broker).run(now=at(day))
    assert preview == deleted
    return {category: count for category, count in deleted.items() if count}


# The categories each service's sweep counts.
SWEPT = {
    "consent": ("buyer", "erasure-record", "audit-log", "dead-letter"),
    "disclosure": (
        "held-disclosure",
        "disclosure-log",
        "erasure-record",
        "audit-log",
        "dead-letter",
    ),
}


def counting(service: str, category: str, count: int) -> dict[str, int]:
    """A preview of the service's sweep that counts `count` of `category` and nothing else."""
    return dict.fromkeys(SWEPT[service], 0) | {category: count}


def deleted_total(service: str, category: str) -> float:
    labels = {"service": service, "category": category}
    return REGISTRY.get_sample_value("register_retention_deleted_total", labels) or 0.0


def no_personal_data(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        text = f"{record.getMessage()} {record.__dict__}"
        assert not [name for name in NAMES if name in text], text


# --- orders ------------------------------------------------------------------------------------


@pytest.fixture
async def orders() -> AsyncIterator[tuple[RabbitBroker, Database]]:
    async with running(in_memory(OrdersSettings), assemble_orders) as running_service:
        yield running_service


async def test_orders_lets_a_recipient_then_the_buyer_then_the_ledger_go_each_on_its_day(
    orders: tuple[RabbitBroker, Database], caplog: pytest.LogCaptureFixture
) -> None:
    broker, database = orders
    caplog.set_level(logging.INFO)
    placed = at(date.today() - timedelta(days=20))
    gift = order_placed(
        buyer=person("Aino", "Virtanen", AINO),
        recipient=person("Eino", "Virtanen", EINO),
        occurred_at=placed,
    )
    later = order_placed(buyer=person("Otto", "Virtanen", OTTO), occurred_at=placed + timedelta(1))
    for order in (gift, later):
        await place(broker, order)
    store = await open_orders_store(database)
    recipient_ends = POLICY[Category.RECIPIENT].ends_on(placed)
    buyer_ends = POLICY[Category.BUYER].ends_on(placed)
    before = deleted_total("orders", "recipient")
    # Staff ask through the runtime command (`rekisteri retention preview`).
    day_after = recipient_ends + timedelta(1)
    preview = await ask(broker, "orders.runtime", PreviewRetention(as_of=day_after))
    assert preview == {
        "ledger": 0,
        "buyer": 0,
        "recipient": 1,
        "erasure-record": 0,
        "audit-log": 0,
        "dead-letter": 0,
    }

    assert await sweep_on(broker, recipient_ends) == {}
    assert await sweep_on(broker, recipient_ends + timedelta(1)) == {"recipient": 1}
    assert deleted_total("orders", "recipient") == before + 1
    kept = await store.order(gift["order_id"])
    assert kept is not None and kept.recipient is None and kept.recipient_subject is None
    assert kept.buyer == gift["buyer"] and kept.erasures is None
    assert await store.profile("recipient", HASH(EINO)) is None
    assert await store.profile("buyer", HASH(AINO)) is not None
    assert await sweep_on(broker, recipient_ends + timedelta(1)) == {}, "nothing twice"
    assert await sweep_on(broker, recipient_ends + timedelta(2)) == {"recipient": 1}, "Otto's"

    # Aino's buyer data goes the day after its last day; Otto, who ordered a day later, stays.
    assert await sweep_on(broker, buyer_ends) == {}
    assert await sweep_on(broker, buyer_ends + timedelta(1)) == {"buyer": 1}
    assert await store.profile("buyer", HASH(AINO)) is None
    assert await store.orders_of(HASH(AINO)) == []
    assert [o.order_id for o in await store.orders_of(HASH(OTTO))] == [later["order_id"]]
    stripped = await store.order(gift["order_id"])
    assert stripped is not None and stripped.lines and stripped.kept_until is not None
    assert await sweep_on(broker, buyer_ends + timedelta(2)) == {"buyer": 1}, "Otto's"

    # The ledger lines, naming nobody now, go with the Accounting Act's end.
    ledger_ends = POLICY[Category.LEDGER].ends_on(placed)
    both = ledger_ends == POLICY[Category.LEDGER].ends_on(placed + timedelta(1))
    assert await sweep_on(broker, ledger_ends) == {}
    # Staff's preview above is in the audit log: it goes at the end of its own year's period.
    audit_too = POLICY[Category.AUDIT_LOG].ends_on(datetime.now(UTC)) <= ledger_ends
    assert await sweep_on(broker, ledger_ends + timedelta(1)) == {
        "ledger": 2 if both else 1,
        **({"audit-log": 1} if audit_too else {}),
    }
    assert await store.order(gift["order_id"]) is None
    no_personal_data(caplog)


async def test_a_buyer_who_orders_again_is_kept_from_their_last_order(
    orders: tuple[RabbitBroker, Database],
) -> None:
    broker, database = orders
    first = datetime.now(UTC) - timedelta(days=300)
    again = first + timedelta(days=280)
    for when in (first, again):
        await place(broker, order_placed(buyer=person("Aino", "V", AINO), occurred_at=when))
    store = await open_orders_store(database)
    assert await sweep_on(broker, POLICY[Category.BUYER].ends_on(first) + timedelta(1)) == {
        "recipient": 2
    }
    assert len(await store.orders_of(HASH(AINO))) == 2
    assert await sweep_on(broker, POLICY[Category.BUYER].ends_on(again) + timedelta(1)) == {
        "buyer": 1
    }
    assert await store.orders_of(HASH(AINO)) == []


async def test_an_order_older_than_its_peoples_retention_arrives_without_them(
    orders: tuple[RabbitBroker, Database],
) -> None:
    broker, database = orders
    store = await open_orders_store(database)
    today = datetime.now(UTC)
    # Aino is a customer now; Eino was a recipient 25 months ago; Otto bought 37 months ago.
    await place(broker, order_placed(buyer=person("Aino", "V", AINO), occurred_at=today))
    gift = order_placed(
        buyer=person("Aino", "V", AINO),
        recipient=person("Eino", "V", EINO),
        occurred_at=today - timedelta(days=25 * 31),
    )
    old = order_placed(buyer=person("Otto", "V", OTTO), occurred_at=today - timedelta(days=37 * 31))
    for order in (gift, old):
        await place(broker, order)

    kept = await store.order(gift["order_id"])
    assert kept is not None and kept.recipient is None and kept.buyer == gift["buyer"]
    assert await store.profile("recipient", HASH(EINO)) is None
    stripped = await store.order(old["order_id"])
    assert stripped is not None and stripped.buyer is None and stripped.recipient is None
    assert stripped.kept_until is not None and stripped.lines
    assert await store.profile("buyer", HASH(OTTO)) is None


# --- consent -----------------------------------------------------------------------------------


async def test_consent_erases_a_silent_buyer_as_an_erasure_would_keeping_an_objection() -> None:
    async with consent_service() as consent:
        first = datetime.now(UTC) - timedelta(days=100)
        await consent.deliver(
            topology.ORDER_PLACED,
            order_placed(buyer=person("Aino", "V", AINO), occurred_at=first, newsletter=True),
        )
        await consent.deliver(
            topology.ORDER_PLACED,
            order_placed(buyer=person("Otto", "V", OTTO), occurred_at=first, newsletter=True),
        )
        changed = first + timedelta(days=60)
        await consent.deliver(
            topology.CONSENT_UPDATED, consent_updated(AINO, marketing=True, occurred_at=changed)
        )
        await consent.deliver(
            topology.MARKETING_OBJECTION, marketing_objection(OTTO, occurred_at=first)
        )
        otto_ends = POLICY[Category.BUYER].ends_on(first)
        aino_ends = POLICY[Category.BUYER].ends_on(changed)
        sweep = sweep_of(consent.broker)

        assert (await sweep.run(now=at(otto_ends)))["buyer"] == 0
        assert await sweep.preview(otto_ends + timedelta(1)) == counting("consent", "buyer", 1)
        assert (await sweep.run(now=at(otto_ends + timedelta(1))))["buyer"] == 1
        assert await consent.person(OTTO) is None and await consent.history(OTTO) == []
        assert await consent.suppressed_since(OTTO) == first.replace(
            microsecond=first.microsecond // 1000 * 1000
        )
        assert await consent.person(AINO) is not None, "her consent event came later"

        assert (await sweep.run(now=at(aino_ends)))["buyer"] == 0
        assert (await sweep.run(now=at(aino_ends + timedelta(1))))["buyer"] == 1
        assert await consent.person(AINO) is None and await consent.history(AINO) == []
        assert await consent.suppressed_since(AINO) is None

        # Otto comes back: a new customer, still objecting (Art. 21(3)); Aino starts afresh.
        for email in (OTTO, AINO):
            await consent.deliver(
                topology.ORDER_PLACED,
                order_placed(buyer=person("X", "Y", email), newsletter=True),
            )
        audience = await consent.stream(ExportAudience(purpose="newsletter"))
        assert [row["email"] for page in audience for row in page.rows] == [AINO]
        otto = await consent.person(OTTO)
        assert otto is not None and otto.state.objected


async def test_consent_events_older_than_their_retention_are_left_out() -> None:
    async with consent_service() as consent:
        long_ago = datetime.now(UTC) - timedelta(days=37 * 31)
        await consent.deliver(
            topology.CONSENT_UPDATED, consent_updated(AINO, newsletter=True, occurred_at=long_ago)
        )
        await consent.deliver(
            topology.ORDER_PLACED,
            order_placed(buyer=person("Eino", "V", EINO), occurred_at=long_ago),
        )
        assert await consent.person(AINO) is None and await consent.person(EINO) is None
        # An objection is not lost for being old: it is kept as the sweep would have kept it.
        await consent.deliver(
            topology.MARKETING_OBJECTION, marketing_objection(OTTO, occurred_at=long_ago)
        )
        assert await consent.person(OTTO) is None
        assert await consent.suppressed_since(OTTO) is not None
        # Someone still a customer gets their old event recorded: it is part of their history.
        await consent.deliver(topology.CONSENT_UPDATED, consent_updated(AINO, marketing=True))
        await consent.deliver(
            topology.CONSENT_UPDATED, consent_updated(AINO, newsletter=False, occurred_at=long_ago)
        )
        assert len(await consent.history(AINO)) == 2
        store = await open_consent_store(consent.database)
        assert await store.count_inactive_before(long_ago + timedelta(1)) == 0


# --- disclosure --------------------------------------------------------------------------------


@pytest.fixture
async def disclosure() -> AsyncIterator[tuple[RabbitBroker, Database, list[dict[str, Any]]]]:
    async with disclosure_with_inbox("spa-oy") as running_service:
        yield running_service


async def test_disclosure_cancels_what_was_held_too_long_and_ends_the_log_with_its_order(
    disclosure: tuple[RabbitBroker, Database, list[dict[str, Any]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker, database, inbox = disclosure
    caplog.set_level(logging.INFO)
    await ask(broker, "disclosure", AddProvider(provider_id="spa-oy", name="Spa", country="FI"))
    order = order_placed(
        buyer=person("Aino", "V", AINO), items=[item("spa-oy", "p-1"), item("nobody-oy", "p-2")]
    )
    await place(broker, order)
    assert len(inbox) == 1
    store = await open_disclosure_store(database)
    [held] = await store.held()
    held_ends = POLICY[Category.HELD_DISCLOSURE].ends_on(held.held_since)
    sweep = sweep_of(broker)

    assert (await sweep.run(now=at(held_ends)))["held-disclosure"] == 0
    day_after = held_ends + timedelta(1)
    assert await sweep.preview(day_after) == counting("disclosure", "held-disclosure", 1)
    assert (await sweep.run(now=at(held_ends + timedelta(1))))["held-disclosure"] == 1
    assert await store.held() == []
    cancelled = {entry.provider_id: entry for entry in await store.log_of(order["order_id"])}
    assert cancelled["nobody-oy"].status == "cancelled" and not cancelled["nobody-oy"].holds_data
    assert cancelled["spa-oy"].status == "sent"

    placed = datetime.fromisoformat(order["occurred_at"])
    log_ends = POLICY[Category.DISCLOSURE_LOG].ends_on(placed)
    assert (await sweep.run(now=at(log_ends)))["disclosure-log"] == 0
    last = await sweep.run(now=at(log_ends + timedelta(1)))
    assert last["disclosure-log"] == 2 and last["audit-log"] == 1, "the provider's registration"
    assert await store.log_of(order["order_id"]) == []
    no_personal_data(caplog)


async def test_an_order_older_than_its_recipients_retention_is_disclosed_to_nobody(
    disclosure: tuple[RabbitBroker, Database, list[dict[str, Any]]],
) -> None:
    broker, database, inbox = disclosure
    await ask(broker, "disclosure", AddProvider(provider_id="spa-oy", name="Spa", country="FI"))
    old = order_placed(occurred_at=datetime.now(UTC) - timedelta(days=25 * 31))
    await place(broker, old)
    assert inbox == []
    store = await open_disclosure_store(database)
    assert await store.log_of(old["order_id"]) == []


# --- erasure -----------------------------------------------------------------------------------


async def test_the_erasure_service_deletes_requests_done_at_the_end_of_their_period() -> None:
    broker = RabbitBroker()
    settings = in_memory(ErasureSettings)
    async with running(settings, assemble_erasure, broker) as (test_broker, database):
        await ask(test_broker, "erasure", ReportSubject(email=AINO))
        [access] = await (await open_erasure_store(database)).requests(open_only=False)
        ends = POLICY[Category.ERASURE_RECORD].ends_on(access.received_at)
        sweep = sweep_of(test_broker)
        assert await sweep.run(now=at(ends)) == {
            "erasure-record": 0,
            "audit-log": 0,
            "dead-letter": 0,
        }
        assert await sweep.run(now=at(ends + timedelta(1))) == {
            "erasure-record": 1,
            "audit-log": 1,
            "dead-letter": 0,
        }
        assert await (await open_erasure_store(database)).requests(open_only=False) == []


# --- a store from before the sweep --------------------------------------------------------------


async def test_a_consent_file_from_before_activity_was_kept_gets_it_from_what_it_holds(
    tmp_path: Path,
) -> None:
    path = tmp_path / "consent.sqlite3"
    database = await SqliteDatabase.open(path)
    store = await open_consent_store(database)
    answered = datetime(2026, 3, 1, 12, tzinfo=UTC)
    await store.append_facts(HASH(AINO), [checkout_fact(answered)])
    contact = Contact(email=OTTO, first_name="Otto", last_name="V")
    await store.save_contact(HASH(OTTO), contact, as_of=answered, event_id="e-2")
    await database.run(lambda connection: connection.execute("DROP TABLE activity"))
    await database.close()

    database = await SqliteDatabase.open(path)
    try:
        store = await open_consent_store(database)
        assert await store.last_activity(HASH(AINO)) == answered
        assert await store.last_activity(HASH(OTTO)) == answered
    finally:
        await database.close()


def checkout_fact(at: datetime) -> PermissionFact:
    return PermissionFact(
        event_id="e-1",
        purpose="newsletter",
        granted=True,
        occurred_at=at,
        source="checkout",
        text_version="v1",
    )
