"""Each service's part of an erasure through its handlers: FastStream's test broker and the
embedded store in memory, no RabbitMQ. (Taking dead letters out needs a real broker: it is
tested end to end.)"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from faststream.rabbit import RabbitBroker, RabbitQueue, TestRabbitBroker

from services.consent.app import assemble as assemble_consent
from services.consent.service import ConsentService
from services.consent.settings import ConsentSettings
from services.disclosure.app import assemble as assemble_disclosure
from services.disclosure.settings import DisclosureSettings
from services.disclosure.store import open_store as open_disclosure_store
from services.erasure.domain import Timing
from services.erasure.handlers import build_router as build_erasure_router
from services.erasure.publisher import Participants
from services.erasure.service import ErasureService
from services.erasure.settings import ErasureSettings
from services.erasure.store import open_store
from services.orders.app import assemble as assemble_orders
from services.orders.settings import OrdersSettings
from services.orders.store import open_store as open_orders_store
from shared import topology
from shared.audit import open_audit_log
from shared.contracts.consent import ExportAudience
from shared.contracts.disclosures import erasure_notice_id_for
from shared.contracts.erasure import (
    EraseSubject,
    ErasureReported,
    ListErasureRequests,
    ReportSubject,
    RequestErasure,
    ShowErasureRequest,
)
from shared.contracts.fields import CLOCK_SKEW
from shared.contracts.ops import OpsPage, OpsReply
from shared.contracts.providers import AddProvider
from shared.contracts.webshop import ErasureRequested
from shared.database import Database, connect_database
from shared.erasure.participation import SubjectDeadLetters
from shared.errors import Refused
from shared.retention import expired_before
from shared.runtime import queue_inspector
from tests.factories import (
    consent_updated,
    erasure_requested,
    full_person,
    item,
    marketing_objection,
    order_placed,
    person,
)
from tests.unit.test_consent_service import REPLIES, Consent
from tests.unit.test_services import HASH, in_memory, place, running

AINO = "aino.virtanen@example.fi"


@pytest.fixture(autouse=True)
def no_dead_letter_queues(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a broker there are no dead-letter queues to clear."""

    async def none_found(self: SubjectDeadLetters, subject: str) -> int:
        return 0

    monkeypatch.setattr(SubjectDeadLetters, "remove_subject", none_found)


@pytest.fixture(autouse=True)
def people_kept_long(monkeypatch: pytest.MonkeyPatch) -> None:
    """Orders from 2019 test the ledger's end after an erasure: with the default retention of
    the people's own data they would arrive without them (tests/unit/test_retention_sweeps.py)."""
    monkeypatch.setenv("RETENTION_BUYER_MONTHS", "1200")
    monkeypatch.setenv("RETENTION_RECIPIENT_MONTHS", "1200")


def listen(broker: RabbitBroker, subscription: topology.Subscription) -> list[dict[str, Any]]:
    """Everything published to the subscription's queue, as a consumer there would see it."""
    received: list[dict[str, Any]] = []

    @broker.subscriber(subscription.queue, subscription.exchange)
    async def consume(body: dict[str, Any]) -> None:
        received.append(body)

    return received


def erase(subject: str, request_id: str = "req-1", at: datetime | None = None) -> EraseSubject:
    """The erasure of `subject`, by default a little over the web shop's allowed clock skew ago:
    an event stamped now then counts as after it (one within the skew would be buried)."""
    return EraseSubject(
        request_id=request_id,
        subject=subject,
        reason="subject-request",
        erased_at=at or datetime.now(UTC) - CLOCK_SKEW - timedelta(minutes=1),
    )


async def send_erase(broker: RabbitBroker, service: str, command: EraseSubject) -> None:
    await broker.publish(
        command.model_dump_json().encode(),
        exchange=topology.register_events_exchange(),
        routing_key=topology.erase_subject_routing_key(service),
        content_type="application/json",
        user_id="erasure",
    )


async def publish_webshop(broker: RabbitBroker, event: dict[str, Any]) -> None:
    await broker.publish(
        json.dumps(event).encode(),
        exchange=topology.webshop_exchange(),
        routing_key=topology.ERASURE_REQUESTED,
        content_type="application/json",
        user_id="webshop",
    )


async def ask(broker: RabbitBroker, service: str, command: Any) -> Any:
    reply = await broker.request(
        command.model_dump_json().encode(),
        exchange=topology.ops_exchange(),
        routing_key=service,
        user_id="staff-anna",
    )
    answer = OpsReply.model_validate_json(reply.body)
    assert answer.ok, answer.error
    return answer.result


# --- orders ------------------------------------------------------------------------------------


@pytest.fixture
async def orders() -> AsyncIterator[tuple[RabbitBroker, Database, list[dict[str, Any]]]]:
    broker = RabbitBroker()
    reports = listen(broker, topology.erasure_reported_subscription())
    async with running(in_memory(OrdersSettings), assemble_orders, broker) as (test_broker, db):
        yield test_broker, db, reports


async def test_orders_strips_the_person_keeps_the_ledger_and_never_takes_them_back(
    orders: tuple[RabbitBroker, Database, list[dict[str, Any]]],
) -> None:
    broker, database, reports = orders
    subject = HASH(AINO)
    before = datetime.now(UTC) - timedelta(minutes=10)
    own = order_placed(
        buyer=full_person("Aino", "Virtanen", AINO),
        recipient=person("Eino", "K", "eino@example.fi"),
        occurred_at=before,
    )
    gift = order_placed(recipient=person("Aino", "Virtanen", AINO.upper()), occurred_at=before)
    for order in (own, gift):
        await place(broker, order)

    command = erase(subject)
    await send_erase(broker, "orders", command)
    [report] = reports
    assert report["erased"] == {
        "buyer profiles": 1,
        "recipient profiles": 1,
        "orders stripped of personal data": 2,
        "dead letters": 0,
    }
    [kept] = report["kept"]
    assert sorted(kept["order_ids"]) == sorted([own["order_id"], gift["order_id"]])
    assert kept["basis"].startswith("Finnish Accounting Act")

    store = await open_orders_store(database)
    assert await store.profile("buyer", subject) is None
    assert await store.profile("recipient", subject) is None
    assert await store.orders_of(subject) == []
    stored = {o.order_id: o for o in await store.retained_orders(["req-1"])}
    assert stored[own["order_id"]].buyer is None and stored[own["order_id"]].buyer_subject is None
    assert (stored[own["order_id"]].recipient or {})["first_name"] == "Eino"
    assert stored[gift["order_id"]].recipient is None
    assert stored[gift["order_id"]].buyer == gift["buyer"]
    for order in stored.values():
        assert (order.retention or {})["until"] == f"{datetime.now(UTC).year + 6}-12-31"
        assert order.erasures == ["req-1"] and len(order.lines) == 1
    assert AINO not in "".join(o.model_dump_json() for o in stored.values()).lower()

    # The same request again: the same report, nothing done twice.
    await send_erase(broker, "orders", command)
    assert reports[1] == reports[0]

    # The old order event again changes nothing; a late first one arrives without her.
    await place(broker, own)
    late = order_placed(buyer=full_person("Aino", "Virtanen", AINO))
    late["occurred_at"] = (command.erased_at - timedelta(minutes=1)).isoformat()
    await place(broker, late)
    after = {o.order_id: o for o in await store.retained_orders(["req-1"])}
    assert after[own["order_id"]] == stored[own["order_id"]]
    assert after[late["order_id"]].buyer is None and after[late["order_id"]].erasures == ["req-1"]
    assert await store.profile("buyer", subject) is None

    # A new order after the erasure is a new, clean record.
    await asyncio.sleep(0.01)
    new = order_placed(buyer=full_person("Aino", "Virtanen", AINO), occurred_at=datetime.now(UTC))
    await place(broker, new)
    customer = await store.profile("buyer", subject)
    assert customer is not None and customer.person["last_name"] == "Virtanen"

    answer = await ask(broker, "orders", ReportSubject(email=AINO))
    assert [o["order_id"] for o in answer["orders"]] == [new["order_id"]]
    assert sorted(o["order_id"] for o in answer["retained"]) == sorted(
        [own["order_id"], gift["order_id"], late["order_id"]]
    )
    assert all("buyer" not in o and "recipient" not in o for o in answer["retained"])


LONG_AGO = datetime(2019, 6, 1, 12, 0, tzinfo=UTC)
"""An order's year whose ledger retention ended on 31 December 2025."""


def on(day: str) -> datetime:
    """Noon in Helsinki on `day`, when a retention sweep might run."""
    return datetime.fromisoformat(f"{day}T10:00:00+00:00")


async def aino_erased_after_old_and_recent_orders(
    broker: RabbitBroker, service: str
) -> list[dict[str, Any]]:
    """Aino's orders, placed, then Aino erased: one bought for herself long ago, a gift to Eino
    as long ago, and one she bought for herself in 2025 (its ledger kept to the end of 2031)."""
    aino = person("Aino", "V", AINO)
    orders = [
        order_placed(buyer=aino, recipient=aino, occurred_at=LONG_AGO),
        order_placed(
            buyer=aino, recipient=person("Eino", "K", "eino@example.fi"), occurred_at=LONG_AGO
        ),
        order_placed(buyer=aino, recipient=aino, occurred_at=datetime(2025, 3, 1, tzinfo=UTC)),
    ]
    for order in orders:
        await place(broker, order)
    await send_erase(broker, service, erase(HASH(AINO)))
    return orders


async def test_orders_that_name_nobody_are_deleted_when_their_ledger_retention_ends(
    orders: tuple[RabbitBroker, Database, list[dict[str, Any]]],
) -> None:
    broker, database, _ = orders
    _, old_gift, recent = await aino_erased_after_old_and_recent_orders(broker, "orders")
    store = await open_orders_store(database)

    async def sweep(now: datetime) -> int:
        return await store.delete_expired_ledgers(expired_before(now))

    async def stored() -> set[str]:
        """Every order still kept: those stripped of Aino or Eino, and Eino's own."""
        kept = await store.retained_orders(["req-1", "req-2"])
        return {o.order_id for o in [*kept, *await store.orders_of(HASH("eino@example.fi"))]}

    # The old order she bought for herself holds nobody's data now, and its retention has
    # ended: it goes. The gift still holds Eino's data; the recent order is kept to 2031.
    assert await sweep(on("2026-11-24")) == 1
    assert await stored() == {old_gift["order_id"], recent["order_id"]}
    answer = await ask(broker, "orders", ReportSubject(email=AINO))
    assert sorted(o["order_id"] for o in answer["retained"]) == sorted(
        [old_gift["order_id"], recent["order_id"]]
    )

    assert await sweep(on("2031-12-31")) == 0, "kept to the end of its last day"
    assert await sweep(on("2032-01-01")) == 1
    assert await stored() == {old_gift["order_id"]}

    # Once Eino is erased too, the gift names nobody either.
    await send_erase(broker, "orders", erase(HASH("eino@example.fi"), request_id="req-2"))
    assert await sweep(on("2032-01-01")) == 1
    assert await stored() == set()


# --- disclosure --------------------------------------------------------------------------------


@pytest.fixture
async def disclosure() -> AsyncIterator[
    tuple[RabbitBroker, Database, list[dict[str, Any]], dict[str, list[dict[str, Any]]]]
]:
    broker = RabbitBroker()
    reports = listen(broker, topology.erasure_reported_subscription())
    inboxes = {
        provider_id: listen(
            broker,
            topology.Subscription(
                topology.provider_queue_name(provider_id),
                topology.disclosures_exchange(),
                provider_id,
            ),
        )
        for provider_id in ("spa-oy", "kart-oy")
    }

    settings = in_memory(DisclosureSettings)
    async with running(settings, assemble_disclosure, broker) as (test_broker, database):
        yield test_broker, database, reports, inboxes


async def test_disclosure_tells_each_provider_once_and_keeps_the_log_without_the_person(
    disclosure: tuple[
        RabbitBroker, Database, list[dict[str, Any]], dict[str, list[dict[str, Any]]]
    ],
) -> None:
    broker, database, reports, inboxes = disclosure
    for provider_id in ("spa-oy", "kart-oy"):
        await ask(
            broker, "disclosure", AddProvider(provider_id=provider_id, name="P", country="FI")
        )
    subject = HASH(AINO)
    both = order_placed(
        buyer=full_person("Aino", "Virtanen", AINO),
        items=[item("spa-oy", "p-1"), item("kart-oy", "p-2"), item("nobody-oy", "p-3")],
    )
    gift = order_placed(recipient=person("Aino", "V", AINO), items=[item("spa-oy", "p-4")])
    other = order_placed(items=[item("kart-oy", "p-5")])
    for order in (both, gift, other):
        await place(broker, order)
    assert [len(inboxes[p]) for p in ("spa-oy", "kart-oy")] == [2, 2]

    command = erase(subject)
    await send_erase(broker, "disclosure", command)
    await send_erase(broker, "disclosure", command)
    notices = {p: [m for m in inboxes[p] if m["type"] == "erasure_notice"] for p in inboxes}
    [spa], [kart] = notices["spa-oy"], notices["kart-oy"]
    assert spa["notice_id"] == str(erasure_notice_id_for("req-1", "spa-oy"))
    assert sorted(spa["order_ids"]) == sorted([both["order_id"], gift["order_id"]])
    assert kart["order_ids"] == [both["order_id"]]
    assert set(spa) == {"type", "notice_id", "order_ids", "occurred_at", "roles"}
    assert sorted(spa["roles"], key=lambda r: r["role"]) == [
        {"order_id": both["order_id"], "role": "buyer"},
        {"order_id": gift["order_id"], "role": "recipient"},
    ]
    assert kart["roles"] == [{"order_id": both["order_id"], "role": "buyer"}]

    first, again = reports
    assert first == again and first["providers_notified"] == ["kart-oy", "spa-oy"]
    assert first["erased"]["held disclosures (with their copy of the data)"] == 1

    store = await open_disclosure_store(database)
    log = [entry for order in (both, gift) for entry in await store.log_of(order["order_id"])]
    assert len(log) == 4 and await store.entries_naming(subject) == []
    assert all("erased:req-1" in entry.subjects for entry in log)
    assert subject not in repr(log) and AINO not in repr(log)
    [held] = [entry for entry in log if entry.provider_id == "nobody-oy"]
    assert held.status == "cancelled" and not held.holds_data

    # The old order again sends nothing, and Aino's report shows only what is kept.
    await place(broker, both)
    assert [len(inboxes[p]) for p in ("spa-oy", "kart-oy")] == [3, 3]
    answer = await ask(broker, "disclosure", ReportSubject(email=AINO))
    assert answer["sent"] == [] and answer["held"] == []
    assert sorted(d["order_id"] for d in answer["retained"]) == sorted(
        [both["order_id"], both["order_id"], gift["order_id"]]
    )


async def test_the_log_of_erased_people_is_deleted_when_the_ledger_retention_ends(
    disclosure: tuple[
        RabbitBroker, Database, list[dict[str, Any]], dict[str, list[dict[str, Any]]]
    ],
) -> None:
    broker, database, _, _ = disclosure
    await ask(broker, "disclosure", AddProvider(provider_id="spa-oy", name="P", country="FI"))
    old_own, old_gift, recent = await aino_erased_after_old_and_recent_orders(broker, "disclosure")
    store = await open_disclosure_store(database)
    placed = [old_own, old_gift, recent]

    async def sweep(now: datetime) -> int:
        return await store.delete_expired_entries(expired_before(now))

    async def logged() -> set[str]:
        return {e.order_id for order in placed for e in await store.log_of(order["order_id"])}

    # The log of what spa-oy got of her old order goes with that order's ledger; the entry
    # that still names Eino stays, and so does the recent one until its order's retention ends.
    assert await sweep(on("2026-11-24")) == 1
    assert await logged() == {old_gift["order_id"], recent["order_id"]}
    await send_erase(broker, "disclosure", erase(HASH("eino@example.fi"), request_id="req-2"))
    assert await sweep(on("2026-11-24")) == 1
    assert await logged() == {recent["order_id"]}
    assert await sweep(on("2031-12-31")) == 0
    assert await sweep(on("2032-01-01")) == 1


# --- consent ----------------------------------------------------------------------------------


@pytest.fixture
async def consent() -> AsyncIterator[tuple[Consent, list[dict[str, Any]]]]:
    """The consent service, with the erasure service's side of `erasure.reported`."""
    broker = RabbitBroker()
    reports = listen(broker, topology.erasure_reported_subscription())
    changes = listen(
        broker,
        topology.Subscription(
            "test.consent-changed", topology.register_events_exchange(), topology.CONSENT_CHANGED
        ),
    )
    pages: list[OpsPage] = []

    @broker.subscriber(RabbitQueue(REPLIES))
    async def rekisteri(body: dict[str, Any]) -> None:
        pages.append(OpsPage.model_validate(body))

    settings = in_memory(ConsentSettings)
    async with running(settings, assemble_consent, broker) as (test_broker, database):
        yield Consent(test_broker, database, changes, pages), reports


async def audience(consent: Consent, purpose: str) -> list[str]:
    pages = await consent.stream(ExportAudience(purpose=purpose))  # type: ignore[arg-type]
    return [row["email"] for page in pages for row in page.rows]


async def back_with_a_newsletter_order(consent: Consent) -> None:
    """Aino orders again after her erasure (a moment later, so after it), saying yes to the
    newsletter."""
    await asyncio.sleep(0.01)
    again = order_placed(
        buyer=person("A", "V", AINO), occurred_at=datetime.now(UTC), newsletter=True
    )
    await consent.deliver(topology.ORDER_PLACED, again)


async def test_consent_forgets_a_person_but_an_objection_stays_a_suppression(
    consent: tuple[Consent, list[dict[str, Any]]],
) -> None:
    service, reports = consent
    other = "olli@example.fi"
    past = datetime.now(UTC) - timedelta(minutes=10)
    for email in (AINO, other):
        order = order_placed(buyer=person("A", "V", email), occurred_at=past, newsletter=True)
        await service.deliver(topology.ORDER_PLACED, order)
        await service.deliver(
            topology.MARKETING_OBJECTION,
            marketing_objection(email, occurred_at=past + timedelta(minutes=1)),
        )
    withdrawal = marketing_objection(other, objected=False, occurred_at=past + timedelta(minutes=2))
    await service.deliver(topology.MARKETING_OBJECTION, withdrawal)
    assert await audience(service, "newsletter") == [other]

    command = erase(HASH(AINO))
    await send_erase(service.broker, "consent", command)
    [report] = reports
    assert report["erased"] == {"consent facts": 3, "permissions": 1, "dead letters": 0}
    [kept] = report["kept"]
    assert kept["what"].startswith("suppression entry")
    assert await service.person(AINO) is None and await service.history(AINO) == []
    assert await service.suppressed_since(AINO) is not None
    assert await service.suppressed_since(other) is None

    # A late permission change from before the erasure changes nothing.
    late = consent_updated(AINO, newsletter=True, occurred_at=past + timedelta(minutes=3))
    await service.deliver(topology.CONSENT_UPDATED, late)
    assert await service.person(AINO) is None

    # She orders again, ticking both boxes: recorded, but she stays off every list...
    await asyncio.sleep(0.01)
    again = order_placed(
        buyer=person("A", "V", AINO), occurred_at=datetime.now(UTC), newsletter=True, marketing=True
    )
    await service.deliver(topology.ORDER_PLACED, again)
    shown = await ask(service.broker, "consent", ReportSubject(email=AINO))
    assert shown["permissions"]["marketing"]["granted"] is True
    assert shown["may_contact"] == [] and shown["objection"]["source"] == "suppression"
    assert shown["suppressed_since"] is not None and shown["erased_at"] is not None
    assert len(shown["history"]) == 2
    assert await audience(service, "newsletter") == [other]

    # ...until she herself withdraws the objection.
    withdrawn = marketing_objection(AINO, objected=False, occurred_at=datetime.now(UTC))
    await service.deliver(topology.MARKETING_OBJECTION, withdrawn)
    assert sorted(await audience(service, "newsletter")) == sorted([AINO, other])

    # Erased again without an objection standing: no suppression is kept.
    await send_erase(service.broker, "consent", erase(HASH(AINO), request_id="req-2"))
    assert reports[-1]["kept"] == []
    assert await service.suppressed_since(AINO) is None
    assert await service.suppressed_since(other) is None


async def objection_delayed_past_an_erasure(service: Consent) -> dict[str, Any]:
    """Aino orders with the newsletter box ticked and objects a minute later, and is erased
    before that objection is delivered: returns the objection, still to deliver."""
    past = datetime.now(UTC) - timedelta(minutes=10)
    first = order_placed(buyer=person("A", "V", AINO), occurred_at=past, newsletter=True)
    await service.deliver(topology.ORDER_PLACED, first)
    await send_erase(service.broker, "consent", erase(HASH(AINO)))
    return marketing_objection(AINO, occurred_at=past + timedelta(minutes=1))


async def test_an_objection_made_before_an_erasure_but_delivered_after_it_still_stands(
    consent: tuple[Consent, list[dict[str, Any]]],
) -> None:
    service, reports = consent
    late = await objection_delayed_past_an_erasure(service)
    assert reports[-1]["kept"] == [], "the erasure knew of no objection"

    # She orders again, ticking the box, and is on the list again...
    await back_with_a_newsletter_order(service)
    assert await audience(service, "newsletter") == [AINO]

    # ...until the objection she made before the erasure arrives: off every list at once.
    await service.deliver(topology.MARKETING_OBJECTION, late)
    assert await audience(service, "newsletter") == []
    assert await service.suppressed_since(AINO) is not None
    shown = await ask(service.broker, "consent", ReportSubject(email=AINO))
    assert shown["objection"]["source"] == "suppression" and shown["may_contact"] == []

    # Delivered again, or followed by a late withdrawal from before the erasure: no change.
    await service.deliver(topology.MARKETING_OBJECTION, late)
    late_withdrawal = {**late, "event_id": str(uuid.uuid4()), "objected": False}
    await service.deliver(topology.MARKETING_OBJECTION, late_withdrawal)
    assert await audience(service, "newsletter") == []

    # Her own withdrawal after the erasure lifts it.
    withdrawn = marketing_objection(AINO, objected=False, occurred_at=datetime.now(UTC))
    await service.deliver(topology.MARKETING_OBJECTION, withdrawn)
    assert await audience(service, "newsletter") == [AINO]


async def test_a_late_objection_of_a_person_not_back_since_the_erasure_keeps_only_the_suppression(
    consent: tuple[Consent, list[dict[str, Any]]],
) -> None:
    service, _ = consent
    late = await objection_delayed_past_an_erasure(service)

    await service.deliver(topology.MARKETING_OBJECTION, late)

    assert await service.person(AINO) is None and await service.history(AINO) == []
    assert await service.suppressed_since(AINO) is not None


async def test_erasing_again_someone_not_back_since_keeps_their_suppression(
    consent: tuple[Consent, list[dict[str, Any]]],
) -> None:
    service, reports = consent
    past = datetime.now(UTC) - timedelta(minutes=10)
    order = order_placed(buyer=person("A", "V", AINO), occurred_at=past, newsletter=True)
    await service.deliver(topology.ORDER_PLACED, order)
    objection = marketing_objection(AINO, occurred_at=past + timedelta(minutes=1))
    await service.deliver(topology.MARKETING_OBJECTION, objection)
    await send_erase(service.broker, "consent", erase(HASH(AINO)))

    # A second request (the web shop's, or an operator's) withdraws no objection.
    await send_erase(service.broker, "consent", erase(HASH(AINO), request_id="req-2"))
    [kept] = reports[-1]["kept"]
    assert kept["what"].startswith("suppression entry")
    assert await service.suppressed_since(AINO) is not None

    await back_with_a_newsletter_order(service)
    assert await audience(service, "newsletter") == []


async def test_an_objection_delivered_while_her_erasure_is_carried_out_still_stands(
    consent: tuple[Consent, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The objection, made before the erasure, arrives after the erasure's plan (which knew
    of none) and before the plan is carried out: it waits for the erasure to finish (the
    person's lock), then stands as a suppression."""
    service, reports = consent
    past = datetime.now(UTC) - timedelta(minutes=10)
    order = order_placed(buyer=person("A", "V", AINO), occurred_at=past, newsletter=True)
    await service.deliver(topology.ORDER_PLACED, order)
    late = marketing_objection(AINO, occurred_at=past + timedelta(minutes=1))
    plan = ConsentService.plan_erasure
    deliveries: list[asyncio.Task[None]] = []

    async def objection_arrives_after_planning(self: ConsentService, command: Any) -> Any:
        planned = await plan(self, command)
        deliveries.append(asyncio.create_task(service.deliver(topology.MARKETING_OBJECTION, late)))
        await asyncio.sleep(0)  # the delivery starts, and waits for the erasure
        return planned

    monkeypatch.setattr(ConsentService, "plan_erasure", objection_arrives_after_planning)
    await send_erase(service.broker, "consent", erase(HASH(AINO)))
    assert reports[-1]["kept"] == [], "the plan knew of no objection"
    [delivery] = deliveries
    await delivery
    assert await service.suppressed_since(AINO) is not None

    await back_with_a_newsletter_order(service)
    assert await audience(service, "newsletter") == []


# --- the erasure service -----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


TIMING = Timing(
    deadline=timedelta(days=30),
    retry_first=timedelta(seconds=10),
    retry_max=timedelta(seconds=40),
    stuck_after=timedelta(seconds=60),
)
Asked = dict[str, list[dict[str, Any]]]


@pytest.fixture
async def erasure_service() -> AsyncIterator[tuple[RabbitBroker, ErasureService, Clock, Asked]]:
    """The erasure service with a clock the test sets, and participants that only listen."""
    settings = in_memory(ErasureSettings)
    database = await connect_database(settings)
    broker = RabbitBroker()
    asked = {
        service: listen(broker, topology.erase_subject_subscription(service))
        for service in topology.ERASURE_PARTICIPANTS
    }
    await open_audit_log(settings, database, broker)
    store = await open_store(database)
    clock = Clock()
    dead_letters = SubjectDeadLetters(queue_inspector(settings, broker), HASH)
    service = ErasureService(store, HASH, Participants(broker), dead_letters, TIMING, clock)
    broker.include_router(build_erasure_router(service, settings))
    try:
        async with TestRabbitBroker(broker) as test_broker:
            yield test_broker, service, clock, asked
    finally:
        await database.close()


async def report_from(broker: RabbitBroker, request_id: str, service: str) -> None:
    report = ErasureReported(
        request_id=request_id,
        service=service,  # type: ignore[arg-type]
        reported_at=datetime.now(UTC),
        erased={"things": 1},
        providers_notified=["spa-oy"] if service == "disclosure" else [],
    )
    await broker.publish(
        report.model_dump_json().encode(),
        exchange=topology.register_events_exchange(),
        routing_key=topology.ERASURE_REPORTED,
        user_id=service,
    )


async def test_an_erasure_asks_every_participant_and_completes_with_all_their_reports(
    erasure_service: tuple[RabbitBroker, ErasureService, Clock, Asked],
) -> None:
    broker, _, _, asked = erasure_service
    started = await ask(broker, "erasure", RequestErasure(email=AINO, reason="misuse", note="T-1"))
    assert started["status"] == "in_progress" and started["requested_by"] == "staff-anna"
    request_id = started["request_id"]
    for service in topology.ERASURE_PARTICIPANTS:
        [command] = asked[service]
        assert command["subject"] == HASH(AINO) and command["reason"] == "misuse"
    again = await ask(broker, "erasure", RequestErasure(email=AINO.upper(), reason="misuse"))
    assert again["request_id"] == request_id

    for service in topology.ERASURE_PARTICIPANTS:
        await report_from(broker, request_id, service)
    await report_from(broker, request_id, "orders")  # a repeat changes nothing
    done = await ask(broker, "erasure", ShowErasureRequest(request_id=request_id))
    assert done["status"] == "completed" and done["missing"] == []
    assert done["receipt"]["providers_notified"] == ["spa-oy"]
    assert set(done["receipt"]["services"]) == {"orders", "consent", "disclosure", "erasure"}
    assert AINO not in json.dumps(done)

    # Completed: a new request for the same person is a new erasure.
    later = await ask(broker, "erasure", RequestErasure(email=AINO, reason="subject-request"))
    assert later["request_id"] != request_id


async def test_a_silent_participant_is_asked_again_with_back_off_and_the_request_gets_stuck(
    erasure_service: tuple[RabbitBroker, ErasureService, Clock, Asked],
) -> None:
    broker, service, clock, asked = erasure_service
    request_id = (await ask(broker, "erasure", RequestErasure(email=AINO, reason="misuse")))[
        "request_id"
    ]
    await report_from(broker, request_id, "orders")
    await report_from(broker, request_id, "disclosure")

    def times_asked() -> dict[str, int]:
        return {name: len(commands) for name, commands in asked.items()}

    start = clock.now
    for seconds, expected in ((5, 1), (10, 2), (20, 2), (30, 3), (50, 3), (60, 4), (100, 5)):
        clock.now = start + timedelta(seconds=seconds)
        await service.retry_due()
        assert times_asked() == {"orders": 1, "disclosure": 1, "consent": expected}, seconds
    stuck = await ask(broker, "erasure", ShowErasureRequest(request_id=request_id))
    assert stuck["status"] == "stuck" and stuck["missing"] == ["consent"]
    assert stuck["stuck_since"] is not None

    await report_from(broker, request_id, "consent")
    done = await ask(broker, "erasure", ShowErasureRequest(request_id=request_id))
    assert done["status"] == "completed" and done.get("stuck_since") is None


async def test_the_web_shops_request_delivered_twice_is_one_erasure(
    erasure_service: tuple[RabbitBroker, ErasureService, Clock, Asked],
) -> None:
    broker, _, _, asked = erasure_service
    event = erasure_requested(email=AINO)
    for _ in range(2):
        await publish_webshop(broker, event)
    resent = {**event, "event_id": str(uuid.uuid4())}
    await publish_webshop(broker, resent)
    assert {name: len(commands) for name, commands in asked.items()} == dict.fromkeys(
        topology.ERASURE_PARTICIPANTS, 1
    )
    [request] = await ask(broker, "erasure", ListErasureRequests())
    assert (request["request_id"], request["source"]) == (event["request_id"], "webshop")
    assert request["requested_by"] == "webshop"


async def test_a_request_id_taken_by_another_person_and_a_report_of_no_request_are_refused(
    erasure_service: tuple[RabbitBroker, ErasureService, Clock, Asked],
) -> None:
    broker, service, _, _ = erasure_service
    event = erasure_requested(email=AINO)
    await publish_webshop(broker, event)
    clash = {**erasure_requested(email="other@example.fi"), "request_id": event["request_id"]}
    # Refused as invalid: the message goes to the dead-letter queue (tested end to end).
    with pytest.raises(Refused, match="is taken by another request"):
        await service.request_from_webshop(ErasureRequested.model_validate(clash, strict=False))
    report = ErasureReported(
        request_id="no-such-request",
        service="orders",
        reported_at=datetime.now(UTC),
        erased={},
    )
    with pytest.raises(Refused, match="there is no erasure request"):
        await service.record_report(report)
