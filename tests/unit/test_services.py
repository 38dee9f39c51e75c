"""Each service's handlers end to end inside one process: FastStream's test broker and the
embedded store in memory, no RabbitMQ."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from faststream.rabbit import RabbitBroker, TestRabbitBroker

from services.disclosure.app import assemble as assemble_disclosure
from services.disclosure.settings import DisclosureSettings
from services.orders.app import assemble as assemble_orders
from services.orders.settings import OrdersSettings
from shared import topology
from shared.contracts.disclosures import disclosure_id_for
from shared.contracts.ops import OpsReply
from shared.contracts.providers import AddProvider
from shared.database import Database, DatabaseConnection, connect_database
from shared.identity import SubjectHasher
from shared.settings import ServiceSettings
from tests.factories import item, order_placed, person

Assemble = Callable[[ServiceSettings, DatabaseConnection, RabbitBroker], Awaitable[Any]]


@asynccontextmanager
async def running(
    settings: ServiceSettings, assemble: Assemble, broker: RabbitBroker | None = None
) -> AsyncIterator[tuple[RabbitBroker, Database]]:
    database = await connect_database(settings)
    broker = broker or RabbitBroker()
    hooks = await assemble(settings, database, broker)
    try:
        async with TestRabbitBroker(broker) as test_broker:
            for hook in hooks:
                await hook()
            yield test_broker, database.database
    finally:
        await database.close()


def in_memory(settings_class: type[ServiceSettings]) -> ServiceSettings:
    return settings_class(mongodb_url="memory://", identity_hash_key="unit-test-key")


async def place(broker: RabbitBroker, payload: dict[str, Any] | bytes) -> None:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    await broker.publish(
        body,
        exchange=topology.webshop_exchange(),
        routing_key=topology.ORDER_PLACED,
        content_type="application/json",
    )


HASH = SubjectHasher("unit-test-key")


async def test_orders_keeps_the_order_and_both_profiles_once() -> None:
    async with running(in_memory(OrdersSettings), assemble_orders) as (broker, database):
        order = order_placed()
        await place(broker, order)
        await place(broker, order)
        stored = await database["orders"].find({}).to_list(None)
        assert [o["_id"] for o in stored] == [order["order_id"]]
        assert (
            await database["customers"].count_documents({"_id": HASH(order["buyer"]["email"])}) == 1
        )
        assert (
            await database["recipients"].count_documents({"_id": HASH(order["recipient"]["email"])})
            == 1
        )


async def test_an_older_order_does_not_roll_back_a_buyers_newer_data() -> None:
    async with running(in_memory(OrdersSettings), assemble_orders) as (broker, database):
        newer = order_placed(buyer=person("Aino", "Laine", "aino@example.fi"))
        older = order_placed(buyer=person("Aino", "Virtanen", "aino@example.fi"))
        older["occurred_at"] = "2026-01-01T10:00:00+02:00"
        await place(broker, newer)
        await place(broker, older)
        customer = await database["customers"].find_one({"_id": HASH("aino@example.fi")})
        assert customer is not None and customer["person"]["last_name"] == "Laine"
        assert await database["orders"].count_documents({}) == 2


PROVIDER_INBOX: list[dict[str, Any]] = []


@pytest.fixture
async def disclosure() -> AsyncIterator[tuple[RabbitBroker, Database]]:
    """The disclosure service, with provider spa-oy consuming its queue in the same process."""
    broker = RabbitBroker()
    PROVIDER_INBOX.clear()

    @broker.subscriber(topology.provider_queue("spa-oy"), topology.disclosures_exchange())
    async def provider(body: dict[str, Any]) -> None:
        PROVIDER_INBOX.append(body)

    async with running(in_memory(DisclosureSettings), assemble_disclosure, broker) as parts:
        yield parts


async def command(broker: RabbitBroker, body: Any) -> OpsReply:
    reply = await broker.request(
        body.model_dump_json().encode() if hasattr(body, "model_dump_json") else body,
        exchange=topology.ops_exchange(),
        routing_key="disclosure",
        user_id="ops-anna",
    )
    return OpsReply.model_validate_json(reply.body)


async def test_a_provider_is_registered_once_with_who_did_it(
    disclosure: tuple[RabbitBroker, Database],
) -> None:
    broker, database = disclosure
    add = AddProvider(provider_id="spa-oy", name="Kylpylä Oy", country="FI")
    first = await command(broker, add)
    assert first.ok and first.result["created_by"] == "ops-anna"
    again = await command(broker, add)
    assert not again.ok and again.error == "provider spa-oy is already registered"
    abroad = await command(broker, AddProvider(provider_id="us-spa", name="US Spa", country="US"))
    assert not abroad.ok and "European Economic Area" in (abroad.error or "")
    assert [p["_id"] for p in await database["providers"].find({}).to_list(None)] == ["spa-oy"]


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
    log = {d["provider_id"]: d for d in await database["disclosures"].find({}).to_list(None)}
    assert log["spa-oy"]["status"] == "sent"
    assert log["spa-oy"]["_id"] == str(disclosure_id_for(order["order_id"], "spa-oy"))
    assert log["nobody-oy"]["status"] == "held"
    assert log["nobody-oy"]["pending"]["items"][0]["product_id"] == "p-2"
    assert len(log) == 2
    [received] = PROVIDER_INBOX
    assert received["disclosure_id"] == log["spa-oy"]["_id"]
    assert [i["product_id"] for i in received["items"]] == ["p-1"]
