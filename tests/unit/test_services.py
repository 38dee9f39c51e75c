"""Each service's handlers end to end inside one process: FastStream's test broker and the
embedded store in memory, no RabbitMQ."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from faststream.rabbit import RabbitBroker, TestRabbitBroker

from services import definition
from services.disclosure.domain import plan_disclosures
from services.disclosure.settings import DisclosureSettings
from services.disclosure.store import RELEASE_LEASE, open_store
from services.orders.settings import OrdersSettings
from services.orders.store import open_store as open_orders_store
from shared import topology
from shared.contracts.disclosure_ops import ListDisclosures, ListHeldDisclosures, ReleaseOrder
from shared.contracts.disclosures import disclosure_id_for
from shared.contracts.ops import OpsReply
from shared.contracts.providers import (
    AddProvider,
    ChangeProviderStatus,
    IssueProviderCredentials,
    UpdateProvider,
)
from shared.contracts.webshop import OrderPlaced
from shared.database import Database, connect_database
from shared.identity import SubjectHasher
from shared.messaging import make_broker
from shared.runtime import assembled
from shared.service_definition import Assemble, ServiceDefinition
from shared.settings import ServiceSettings
from tests.factories import item, order_placed, person

ORDERS = definition("orders")
DISCLOSURE = definition("disclosure")


@asynccontextmanager
async def running(
    settings: ServiceSettings,
    service: ServiceDefinition[Any] | Assemble[Any],
    broker: RabbitBroker | None = None,
) -> AsyncIterator[tuple[RabbitBroker, Database]]:
    """The service assembled as `python -m services.<name>` assembles it (shared/runtime.py
    `assembled`), on FastStream's test broker; by default the broker is made as production
    makes it. `service` is its definition, or an `assemble` (a service's, or a test's own)."""
    if not isinstance(service, ServiceDefinition):
        service = ServiceDefinition(type(settings), service)
    async with (
        assembled(service, settings, broker or make_broker(settings)) as assembled_service,
        TestRabbitBroker(assembled_service.broker) as test_broker,
    ):
        await assembled_service.start()
        yield test_broker, assembled_service.database


def in_memory(settings_class: type[ServiceSettings]) -> ServiceSettings:
    return settings_class(mongodb_url="memory://", identity_hash_key="unit-test-key")


async def place(broker: RabbitBroker, payload: dict[str, Any] | bytes) -> None:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    await broker.publish(
        body,
        exchange=topology.webshop_exchange(),
        routing_key=topology.ORDER_PLACED,
        content_type="application/json",
        user_id="webshop",
    )


HASH = SubjectHasher("unit-test-key")


async def test_orders_keeps_the_order_and_both_profiles_once() -> None:
    async with running(in_memory(OrdersSettings), ORDERS) as (broker, database):
        order = order_placed()
        await place(broker, order)
        await place(broker, order)
        store = await open_orders_store(database)
        buyer, recipient = HASH(order["buyer"]["email"]), HASH(order["recipient"]["email"])
        assert [o.order_id for o in await store.orders_of(buyer)] == [order["order_id"]]
        assert [o.order_id for o in await store.orders_of(recipient)] == [order["order_id"]]
        assert await store.profile("buyer", buyer) is not None
        assert await store.profile("recipient", recipient) is not None


async def test_an_older_order_does_not_roll_back_a_buyers_newer_data() -> None:
    async with running(in_memory(OrdersSettings), ORDERS) as (broker, database):
        newer = order_placed(buyer=person("Aino", "Laine", "aino@example.fi"))
        older = order_placed(buyer=person("Aino", "Virtanen", "aino@example.fi"))
        older["occurred_at"] = "2026-01-01T10:00:00+02:00"
        await place(broker, newer)
        await place(broker, older)
        store = await open_orders_store(database)
        customer = await store.profile("buyer", HASH("aino@example.fi"))
        assert customer is not None and customer.person["last_name"] == "Laine"
        assert len(await store.orders_of(HASH("aino@example.fi"))) == 2


PROVIDER_INBOX: list[dict[str, Any]] = []


@pytest.fixture
async def disclosure() -> AsyncIterator[tuple[RabbitBroker, Database]]:
    """The disclosure service, with providers spa-oy and kart-oy consuming their queues in the
    same process."""
    settings = in_memory(DisclosureSettings)
    broker = make_broker(settings)
    PROVIDER_INBOX.clear()

    for provider_id in ("spa-oy", "kart-oy"):

        @broker.subscriber(topology.provider_queue(provider_id), topology.disclosures_exchange())
        async def provider(body: dict[str, Any]) -> None:
            # Receiving takes a moment, as over a network: concurrent commands interleave here.
            await asyncio.sleep(0.01)
            PROVIDER_INBOX.append(body)

    async with running(settings, DISCLOSURE, broker) as parts:
        yield parts


async def command(broker: RabbitBroker, body: Any) -> OpsReply:
    reply = await broker.request(
        body.model_dump_json().encode() if hasattr(body, "model_dump_json") else body,
        exchange=topology.ops_exchange(),
        routing_key="disclosure",
        user_id="staff-anna",
    )
    return OpsReply.model_validate_json(reply.body)


async def test_a_provider_is_registered_once_with_who_did_it(
    disclosure: tuple[RabbitBroker, Database],
) -> None:
    broker, database = disclosure
    add = AddProvider(provider_id="spa-oy", name="Kylpylä Oy", country="FI")
    first = await command(broker, add)
    assert first.ok and first.result["created_by"] == "staff-anna"
    again = await command(broker, add)
    assert not again.ok and again.error == "provider spa-oy is already registered"
    abroad = await command(broker, AddProvider(provider_id="us-spa", name="US Spa", country="US"))
    assert not abroad.ok and "European Economic Area" in (abroad.error or "")
    store = await open_store(database)
    assert [p.provider_id for p in await store.providers()] == ["spa-oy"]


async def test_a_malformed_command_gets_a_reason_not_silence(
    disclosure: tuple[RabbitBroker, Database],
) -> None:
    broker, _ = disclosure
    reply = await command(broker, b'{"command": "providers.add", "provider_id": "Bad Id"}')
    assert not reply.ok and "provider_id" in (reply.error or "")


async def test_each_registered_provider_gets_one_disclosure_and_the_rest_is_held(
    disclosure: tuple[RabbitBroker, Database],
) -> None:
    broker, database = disclosure
    assert (await command(broker, AddProvider(provider_id="spa-oy", name="Spa", country="FI"))).ok
    order = order_placed(items=[item("spa-oy", "p-1"), item("nobody-oy", "p-2")])
    await place(broker, order)
    await place(broker, order)
    store = await open_store(database)
    log = {entry.provider_id: entry for entry in await store.log_of(order["order_id"])}
    assert log["spa-oy"].status == "sent"
    assert log["spa-oy"].disclosure_id == str(disclosure_id_for(order["order_id"], "spa-oy"))
    assert log["nobody-oy"].status == "held"
    assert log["nobody-oy"].holds_data and log["nobody-oy"].product_ids == ("p-2",)
    assert len(log) == 2
    [received] = PROVIDER_INBOX
    assert received["disclosure_id"] == log["spa-oy"].disclosure_id
    assert [i["product_id"] for i in received["items"]] == ["p-1"]


async def ok(broker: RabbitBroker, body: Any) -> Any:
    reply = await command(broker, body)
    assert reply.ok, reply.error
    return reply.result


async def test_provider_changes_record_who_and_when_and_refuse_outside_the_eea(
    disclosure: tuple[RabbitBroker, Database],
) -> None:
    broker, database = disclosure
    added = await ok(broker, AddProvider(provider_id="spa-oy", name="Spa", country="FI"))
    updated = await ok(broker, UpdateProvider(provider_id="spa-oy", name="Kylpylä Oy"))
    assert (updated["name"], updated["country"]) == ("Kylpylä Oy", "FI")
    assert updated["changed_by"] == "staff-anna" and updated["changed_at"] > added["changed_at"]
    assert updated["created_at"][:23] == added["created_at"][:23]  # MongoDB keeps milliseconds

    abroad = await command(broker, UpdateProvider(provider_id="spa-oy", name="X", country="US"))
    assert not abroad.ok and "European Economic Area" in (abroad.error or "")
    stored = await (await open_store(database)).provider("spa-oy")
    assert stored is not None and (stored.name, stored.country) == ("Kylpylä Oy", "FI")

    suspended = await ok(broker, ChangeProviderStatus(provider_id="spa-oy", status="suspended"))
    assert suspended["status"] == "suspended" and suspended["name"] == "Kylpylä Oy"
    unknown = await command(broker, ChangeProviderStatus(provider_id="nobody", status="active"))
    assert not unknown.ok and unknown.error == "provider nobody is not registered"
    no_login = await command(broker, IssueProviderCredentials(provider_id="nobody"))
    assert not no_login.ok and no_login.error == "provider nobody is not registered"


async def test_a_suspended_provider_gets_nothing_until_activated_and_released_once(
    disclosure: tuple[RabbitBroker, Database],
) -> None:
    broker, database = disclosure
    await ok(broker, AddProvider(provider_id="spa-oy", name="Spa", country="FI"))
    await ok(broker, ChangeProviderStatus(provider_id="spa-oy", status="suspended"))
    order = order_placed(items=[item("spa-oy", "p-1")])
    await place(broker, order)
    assert PROVIDER_INBOX == []
    [held] = await ok(broker, ListHeldDisclosures())
    assert (held["order_id"], held["provider_id"]) == (order["order_id"], "spa-oy")
    assert held["reason"] == "provider spa-oy is suspended"
    assert order["buyer"]["email"] not in json.dumps(held)

    still = await ok(broker, ReleaseOrder(order_id=order["order_id"]))
    assert still["sent"] == [] and still["held"][0]["reason"] == "provider spa-oy is suspended"
    assert PROVIDER_INBOX == []

    await ok(broker, ChangeProviderStatus(provider_id="spa-oy", status="active"))
    released = await ok(broker, ReleaseOrder(order_id=order["order_id"]))
    assert released == {"order_id": order["order_id"], "sent": ["spa-oy"], "held": []}
    again = await ok(broker, ReleaseOrder(order_id=order["order_id"]))
    assert again["sent"] == [] and again["held"] == []
    await place(broker, order)  # a redelivered order does not send it again either
    [received] = PROVIDER_INBOX
    assert received["order_id"] == order["order_id"] and received["buyer"] == order["buyer"]

    [entry] = await (await open_store(database)).log_of(order["order_id"])
    assert entry.status == "sent" and entry.released_by == "staff-anna"
    assert not entry.holds_data and entry.hold_reason is None
    assert await ok(broker, ListHeldDisclosures()) == []


async def test_two_releases_at_once_send_a_held_disclosure_once(
    disclosure: tuple[RabbitBroker, Database],
) -> None:
    broker, _ = disclosure
    order = order_placed(items=[item("spa-oy", "p-1")])
    await place(broker, order)  # spa-oy is not registered yet: held
    await ok(broker, AddProvider(provider_id="spa-oy", name="Spa", country="FI"))
    release = ReleaseOrder(order_id=order["order_id"])
    outcomes = await asyncio.gather(ok(broker, release), ok(broker, release))
    assert sorted(len(outcome["sent"]) for outcome in outcomes) == [0, 1]
    assert len(PROVIDER_INBOX) == 1


async def test_the_disclosure_log_answers_by_person_and_by_provider(
    disclosure: tuple[RabbitBroker, Database],
) -> None:
    broker, _ = disclosure
    await ok(broker, AddProvider(provider_id="spa-oy", name="Spa", country="FI"))
    await ok(broker, AddProvider(provider_id="kart-oy", name="Kart", country="SE"))
    aino = order_placed(
        buyer=person("Aino", "Virtanen", "aino@example.fi"),
        recipient=person("Eino", "Korhonen", None),
        items=[item("spa-oy", "p-1"), item("kart-oy", "p-2")],
    )
    other = order_placed(items=[item("spa-oy", "p-3")])
    gift = order_placed(
        recipient=person("Aino", "Virtanen", "AINO@example.fi"), items=[item("kart-oy", "p-4")]
    )
    for order in (aino, other, gift):
        await place(broker, order)

    by_person = await ok(broker, ListDisclosures(email="Aino@Example.fi"))
    assert sorted((d["order_id"], d["provider_id"]) for d in by_person) == sorted(
        [
            (aino["order_id"], "spa-oy"),
            (aino["order_id"], "kart-oy"),
            (gift["order_id"], "kart-oy"),
        ]
    )
    [spa] = [d for d in by_person if d["provider_id"] == "spa-oy"]
    assert spa["product_ids"] == ["p-1"] and "buyer.last_name" in spa["fields"]
    assert spa["message_id"] == str(disclosure_id_for(aino["order_id"], "spa-oy"))
    assert "recipient.email" not in spa["fields"]

    by_provider = await ok(broker, ListDisclosures(provider_id="spa-oy"))
    assert [d["order_id"] for d in by_provider] == [other["order_id"], aino["order_id"]]
    assert await ok(broker, ListDisclosures(email="nobody@example.fi")) == []
    both = await command(
        broker,
        b'{"command": "disclosures.list", "email": "aino@example.fi", "provider_id": "spa-oy"}',
    )
    assert not both.ok and "either an email or a provider id" in (both.error or "")
    assert "aino@example.fi" not in (both.error or "")


async def test_a_held_disclosure_is_claimed_by_one_release_and_reclaimed_after_a_crash() -> None:
    database = await connect_database(in_memory(DisclosureSettings))
    try:
        store = await open_store(database)
        event = OrderPlaced.model_validate(order_placed(), strict=False)
        [planned] = plan_disclosures(event, {})
        disclosure_id = str(planned.disclosure.disclosure_id)
        now = datetime.now(UTC)
        await store.record_held(planned.disclosure, ["subject"], "not registered", now)

        assert await store.claim_for_release(disclosure_id, now) == planned.disclosure
        assert await store.claim_for_release(disclosure_id, now) is None
        [claimed] = await store.held()
        assert claimed.status == "releasing"
        # The first release died before marking it sent: after the lease, it can be released.
        later = now + RELEASE_LEASE * 2
        assert await store.claim_for_release(disclosure_id, later) == planned.disclosure

        await store.give_back(disclosure_id)
        [held] = await store.held()
        assert held.status == "held"
    finally:
        await database.close()
