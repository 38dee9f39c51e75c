"""Who the services take a message from (shared/senders.py), on FastStream's test broker: a
command only from staff, each message between the parties only from the party entitled to send
it, `guest` only in development. The broker's side (RabbitMQ vouching for the user id, topic
permissions) is in tests/e2e/test_permissions.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from faststream.rabbit import RabbitBroker
from faststream.rabbit.annotations import RabbitMessage

from services.disclosure.app import assemble as assemble_disclosure
from services.disclosure.settings import DisclosureSettings
from services.disclosure.store import open_store as open_disclosure_store
from services.erasure.app import assemble as assemble_erasure
from services.erasure.settings import ErasureSettings
from services.orders.app import assemble as assemble_orders
from services.orders.settings import OrdersSettings
from services.orders.store import open_store as open_orders_store
from shared import messaging, topology
from shared.contracts.erasure import (
    EraseSubject,
    ErasureReported,
    RequestErasure,
    ShowErasureRequest,
)
from shared.contracts.ops import OpsPage
from shared.contracts.providers import AddProvider, IssueProviderCredentials
from shared.contracts.runtime import ListAuditEntries
from shared.database import Database
from shared.erasure.participation import SubjectDeadLetters
from shared.identity import SubjectHasher
from shared.messaging import make_broker
from shared.senders import ORIGINAL_USER_ID_HEADER, RELAYED_FOR_HEADER, first_sender
from shared.settings import ServiceSettings
from tests.factories import order_placed
from tests.unit.test_audit import entries, export_audience_as, send
from tests.unit.test_services import in_memory, running

# Long enough for any rule production may put on the identity key.
PRODUCTION_KEY = "unit-test-identity-key-long-enough-for-production"


def production(
    settings_class: type[ServiceSettings], login: str = "orders", **more: Any
) -> ServiceSettings:
    """Production settings, logged in as `login` (not guest), data in memory."""
    return settings_class(
        REGISTER_ENV="production",
        rabbitmq_url=f"amqp://{login}:fake-password@localhost:5672/register",
        mongodb_url="memory://",
        identity_hash_key=PRODUCTION_KEY,
        **more,
    )


@dataclass(frozen=True)
class DeadLetter:
    queue: str
    reason: str
    sender: str | None


@pytest.fixture
def dead_letters(monkeypatch: pytest.MonkeyPatch) -> list[DeadLetter]:
    """What the services dead-letter: the test broker has no channel to send it on, so the
    dead letter is taken where it would be sent."""
    taken: list[DeadLetter] = []

    async def take(
        message: Any, queue_name: str, service: str, reason: str, sender: str | None = None
    ) -> None:
        taken.append(DeadLetter(queue_name, reason, sender))

    monkeypatch.setattr(messaging, "dead_letter", take)
    return taken


@pytest.fixture(autouse=True)
def no_dead_letter_queues(monkeypatch: pytest.MonkeyPatch) -> None:
    """An erasure clears the person's dead letters; without a broker there are none."""

    async def none_found(self: SubjectDeadLetters, subject: str) -> int:
        return 0

    monkeypatch.setattr(SubjectDeadLetters, "remove_subject", none_found)


async def publish(
    broker: RabbitBroker,
    body: Any,
    *,
    exchange: Any,
    routing_key: str,
    user_id: str | None,
    headers: dict[str, Any] | None = None,
) -> None:
    await broker.publish(
        body.model_dump_json().encode() if hasattr(body, "model_dump_json") else json.dumps(body),
        exchange=exchange,
        routing_key=routing_key,
        content_type="application/json",
        user_id=user_id,
        headers=headers,
    )


async def place(
    broker: RabbitBroker, order: dict[str, Any], user_id: str | None, **headers: str
) -> None:
    await publish(
        broker,
        order,
        exchange=topology.webshop_exchange(),
        routing_key=topology.ORDER_PLACED,
        user_id=user_id,
        headers=headers or None,
    )


async def erase_from_orders(broker: RabbitBroker, subject: str, user_id: str) -> None:
    """Publish the erasure of `subject` to the orders service's queue, as user `user_id`."""
    erase = EraseSubject(
        request_id="req-1", subject=subject, reason="subject-request", erased_at=datetime.now(UTC)
    )
    await publish(
        broker,
        erase,
        exchange=topology.register_events_exchange(),
        routing_key=topology.erase_subject_routing_key("orders"),
        user_id=user_id,
    )


async def orders_of(database: Database, email: str, key: str = "unit-test-key") -> list[str]:
    store = await open_orders_store(database)
    return [order.order_id for order in await store.orders_of(SubjectHasher(key)(email))]


# --- commands: staff only ----------------------------------------------------------------------


async def test_a_services_login_is_refused_every_command_and_audited_as_refused_by_it() -> None:
    async with running(in_memory(DisclosureSettings), assemble_disclosure) as (broker, database):
        add = AddProvider(provider_id="spa-oy", name="Spa", country="FI")
        refused = await send(broker, add, user_id="orders", routing_key="disclosure")
        assert not refused.ok
        assert refused.error == (
            "refused: user orders is not a staff user; commands are carried out only for staff "
            "users (staff-<name>)"
        )
        credentials = IssueProviderCredentials(provider_id="spa-oy")
        assert not (await send(broker, credentials, user_id="webshop", routing_key="disclosure")).ok
        assert await (await open_disclosure_store(database)).providers() == []
        audited = [(e["actor"], e["command"], e["outcome"]) for e in await entries(database)]
        assert audited == [
            ("orders", "providers.add", "refused"),
            ("webshop", "providers.credentials", "refused"),
        ]
        # The same command from staff is carried out.
        assert (await send(broker, add, user_id="staff-anna", routing_key="disclosure")).ok


async def test_an_export_for_a_service_login_is_refused_before_any_row() -> None:
    page, [entry] = await export_audience_as("disclosure")
    assert isinstance(page, OpsPage) and page.final and page.rows == []
    assert "user disclosure is not a staff user" in (page.error or "")
    assert (entry["actor"], entry["command"], entry["outcome"]) == (
        "disclosure",
        "marketing.audience",
        "refused",
    )


async def test_guest_counts_as_staff_in_development_only() -> None:
    runtime = "orders.runtime"
    async with running(in_memory(OrdersSettings), assemble_orders) as (broker, _):
        assert (await send(broker, ListAuditEntries(), user_id="guest", routing_key=runtime)).ok
    async with running(production(OrdersSettings), assemble_orders) as (broker, database):
        refused = await send(broker, ListAuditEntries(), user_id="guest", routing_key=runtime)
        assert not refused.ok and "user guest is not a staff user" in (refused.error or "")
        assert (
            await send(broker, ListAuditEntries(), user_id="staff-anna", routing_key=runtime)
        ).ok
        assert [(e["actor"], e["outcome"]) for e in await entries(database)] == [
            ("guest", "refused"),
            ("staff-anna", "ok"),
        ]


async def test_with_a_user_prefix_only_that_deployments_staff_are_staff() -> None:
    settings = production(OrdersSettings, "reg1-orders", rabbitmq_user_prefix="reg1-")
    runtime = "orders.runtime"
    async with running(settings, assemble_orders) as (broker, _):
        other = await send(broker, ListAuditEntries(), user_id="staff-anna", routing_key=runtime)
        assert not other.ok and "staff users (reg1-staff-<name>)" in (other.error or "")
        ours = await send(
            broker, ListAuditEntries(), user_id="reg1-staff-anna", routing_key=runtime
        )
        assert ours.ok


# --- events: only from the party entitled to send them --------------------------------------------


async def test_an_order_from_anyone_but_the_web_shop_is_dead_lettered_and_changes_nothing(
    dead_letters: list[DeadLetter],
) -> None:
    async with running(in_memory(OrdersSettings), assemble_orders) as (broker, database):
        order = order_placed()
        email = order["buyer"]["email"]
        await place(broker, order, "disclosure")
        await place(broker, order, None)
        assert await orders_of(database, email) == []
        assert dead_letters == [
            DeadLetter(
                "orders.order-placed",
                "sender: the message sent by user disclosure; only user webshop may send it",
                "disclosure",
            ),
            DeadLetter(
                "orders.order-placed",
                "sender: the message carries no AMQP user_id; only user webshop may send it",
                None,
            ),
        ]
        await place(broker, order, "webshop")
        assert await orders_of(database, email) == [order["order_id"]]
        assert len(dead_letters) == 2


async def test_an_erasure_request_from_anyone_but_the_erasure_service_is_dead_lettered(
    dead_letters: list[DeadLetter],
) -> None:
    async with running(in_memory(OrdersSettings), assemble_orders) as (broker, database):
        order = order_placed()
        await place(broker, order, "webshop")
        email = order["buyer"]["email"]
        await erase_from_orders(broker, SubjectHasher("unit-test-key")(email), "consent")
        assert await orders_of(database, email) == [order["order_id"]]
        [refused] = dead_letters
        assert refused.queue == "orders.erase-subject" and refused.sender == "consent"
        assert "sent by user consent; only user erasure may send it" in refused.reason


async def test_a_report_from_a_service_other_than_the_one_it_names_is_dead_lettered_and_ignored(
    dead_letters: list[DeadLetter],
) -> None:
    participants = RabbitBroker()
    for participant in topology.ERASURE_PARTICIPANTS:
        subscription = topology.erase_subject_subscription(participant)

        @participants.subscriber(subscription.queue, subscription.exchange)
        async def asked_to_erase(body: dict[str, Any]) -> None:
            pass  # Each participant's report is what the test sends, forged or not.

    erasure = in_memory(ErasureSettings)
    async with running(erasure, assemble_erasure, participants) as (broker, _):
        request = RequestErasure(email="aino@example.fi", reason="subject-request")
        started = await send(broker, request, routing_key="erasure")
        assert started.ok, started.error
        request_id = started.result["request_id"]

        async def missing() -> list[str]:
            shown = await send(
                broker, ShowErasureRequest(request_id=request_id), routing_key="erasure"
            )
            return sorted(shown.result["missing"])

        assert await missing() == ["consent", "disclosure", "orders"]
        report = ErasureReported(
            request_id=request_id,
            service="disclosure",
            reported_at=datetime.now(UTC),
            erased={"disclosure log entries": 1},
            providers_notified=["spa-oy"],
        )
        events = topology.register_events_exchange()
        reported = topology.ERASURE_REPORTED
        await publish(broker, report, exchange=events, routing_key=reported, user_id="consent")
        assert await missing() == ["consent", "disclosure", "orders"]
        [forged] = dead_letters
        assert (forged.queue, forged.sender) == ("erasure.erasure-reported", "consent")
        assert forged.reason == (
            "sender: the message sent by user consent, but its service is disclosure: only user "
            "disclosure may send it"
        )
        # From a user that is no participant at all, the body is not even read.
        await publish(broker, report, exchange=events, routing_key=reported, user_id="webshop")
        assert "only user consent or user disclosure or user orders" in dead_letters[1].reason

        await publish(broker, report, exchange=events, routing_key=reported, user_id="disclosure")
        assert await missing() == ["consent", "orders"]
        assert len(dead_letters) == 2


# --- production: guest is nobody, relays are believed only from trusted relays ------------------


async def test_in_production_guest_is_no_party(dead_letters: list[DeadLetter]) -> None:
    async with running(production(OrdersSettings), assemble_orders) as (broker, database):
        order = order_placed()
        await place(broker, order, "guest")
        assert await orders_of(database, order["buyer"]["email"], PRODUCTION_KEY) == []
        assert [letter.sender for letter in dead_letters] == ["guest"]
        await place(broker, order, "webshop")
        assert await orders_of(database, order["buyer"]["email"], PRODUCTION_KEY) != []


async def test_a_replay_is_judged_by_the_sender_it_relays_for_and_only_from_a_trusted_relay(
    dead_letters: list[DeadLetter],
) -> None:
    relayed_for = RELAYED_FOR_HEADER
    async with running(production(OrdersSettings), assemble_orders) as (broker, database):
        forged, honest, posing = order_placed(), order_placed(), order_placed()
        # Its own dead letter, first sent by a service: refused again, however it comes back.
        await place(broker, forged, "orders", **{relayed_for: "consent"})
        # Its own dead letter, first sent by the web shop: taken.
        await place(broker, honest, "orders", **{relayed_for: "webshop"})
        # A service that relays nothing for the orders service, claiming to.
        await place(broker, posing, "consent", **{relayed_for: "webshop"})
        stored = {
            order["order_id"]
            for order in (forged, honest, posing)
            if await orders_of(database, order["buyer"]["email"], PRODUCTION_KEY)
        }
        assert stored == {honest["order_id"]}
        assert [(letter.sender, letter.reason) for letter in dead_letters] == [
            (
                "consent",
                "sender: the message sent by user consent, relayed by user orders; only user "
                "webshop may send it",
            ),
            ("consent", "sender: the message sent by user consent; only user webshop may send it"),
        ]


# --- what the services send carries their login ---------------------------------------------------


@pytest.fixture
async def orders_in_production() -> AsyncIterator[tuple[RabbitBroker, Database, list[Any]]]:
    settings = production(OrdersSettings)
    reports: list[Any] = []
    broker = make_broker(settings)

    @broker.subscriber(
        topology.erasure_reported_subscription().queue, topology.register_events_exchange()
    )
    async def erasure_service(body: dict[str, Any], message: RabbitMessage) -> None:
        reports.append(message.raw_message.user_id)

    async with running(settings, assemble_orders, broker) as (test_broker, database):
        yield test_broker, database, reports


async def test_a_service_publishes_under_its_own_login(
    orders_in_production: tuple[RabbitBroker, Database, list[Any]],
) -> None:
    broker, _, reports = orders_in_production
    await erase_from_orders(broker, SubjectHasher(PRODUCTION_KEY)("aino@example.fi"), "erasure")
    assert reports == ["orders"]


def test_a_replay_carries_the_sender_the_dead_letter_was_first_sent_by() -> None:
    """What a replay is to carry in `x-relayed-for` (shared/dead_letters.py sends it)."""
    written = {ORIGINAL_USER_ID_HEADER: "webshop", "x-rejected-by": "orders"}
    # Dead-lettered by a service: the sender it judged.
    assert first_sender(None, written, unroutable=False) == "webshop"
    # Dead-lettered by the broker: the user id it was published with, whatever its headers say.
    assert first_sender("consent", written, unroutable=False) == "consent"
    # The unroutable catch-all: only the user id, which the broker checked.
    assert first_sender(None, written, unroutable=True) == ""
    assert first_sender("webshop", {}, unroutable=True) == "webshop"
