"""A service killed or stopped in the middle of a burst: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from typing import Any

import pytest
from aio_pika.abc import AbstractIncomingMessage

from services.consent.store import open_store as open_consent_store
from services.disclosure.store import open_store as open_disclosure_store
from services.orders.store import open_store as open_orders_store
from tests.e2e.harness import HASH, QueueReader, Register, WebShop, open_database, rekisteri
from tests.e2e.rabbitmq import Broker
from tests.factories import item, order_placed

BURST = 150
PROVIDERS = ("spa-oy", "kart-oy")


async def _register_providers(staff_url: str) -> None:
    for provider in PROVIDERS:
        added = await asyncio.to_thread(
            rekisteri,
            staff_url,
            "providers",
            "add",
            provider,
            "--name",
            provider,
            "--country",
            "FI",
        )
        assert added.returncode == 0, added.stderr


async def _collect(
    reader: QueueReader, provider: str, orders: int
) -> list[AbstractIncomingMessage]:
    """Every disclosure for `provider` until each order was seen at least once."""
    assert reader.channel is not None
    queue = await reader.channel.get_queue(f"disclosures.{provider}")
    received: list[AbstractIncomingMessage] = []
    seen: set[str] = set()
    async with asyncio.timeout(90), queue.iterator() as messages:
        async for message in messages:
            await message.ack()
            received.append(message)
            seen.add(json.loads(message.body)["order_id"])
            if len(seen) == orders:
                break
    return received


async def _burst_with(
    interrupt: Any, register: Register, vhost_url: str, webshop_url: str, rabbitmq: Broker
) -> dict[str, list[AbstractIncomingMessage]]:
    orders = [
        order_placed(items=[item("spa-oy", "p-1"), item("kart-oy", "p-2")]) for _ in range(BURST)
    ]
    async with WebShop(webshop_url) as shop, QueueReader(vhost_url) as reader:
        for number, order in enumerate(orders):
            await shop.publish("order.placed", order, message_id=order["event_id"])
            if number == BURST // 3:
                await asyncio.to_thread(interrupt)
        received = {p: await _collect(reader, p, BURST) for p in PROVIDERS}
    # Disclosure does not wait for orders or consent: let them finish their share first.
    await rabbitmq.wait_until_drained(
        vhost_url, [f"{service}.order-placed" for service in ("orders", "consent", "disclosure")]
    )
    assert register.stop() == {name: 0 for name in register.services}
    async with QueueReader(vhost_url) as reader:
        for provider in PROVIDERS:
            assert await reader.depth(f"disclosures.{provider}") == 0, "a disclosure came late"
        for service in ("orders", "consent", "disclosure"):
            assert await reader.depth(f"{service}.order-placed") == 0
    await _assert_stored_once(register, orders)
    return received


async def _assert_stored_once(register: Register, orders: list[dict[str, Any]]) -> None:
    """Each order once in the orders service, its two disclosures logged as sent, and its
    buyer's two consent facts: none lost, none twice."""
    buyers = {order["order_id"]: HASH(order["buyer"]["email"]) for order in orders}
    database = await open_database(register, "orders")
    try:
        store = await open_orders_store(database)
        for order_id, buyer in buyers.items():
            assert [o.order_id for o in await store.orders_of(buyer)] == [order_id]
    finally:
        await database.close()
    database = await open_database(register, "disclosure")
    try:
        log = await open_disclosure_store(database)
        for order_id in buyers:
            entries = await log.log_of(order_id)
            assert sorted(e.provider_id for e in entries) == sorted(PROVIDERS)
            assert {e.status for e in entries} == {"sent"}
    finally:
        await database.close()
    database = await open_database(register, "consent")
    try:
        consent = await open_consent_store(database)
        for buyer in buyers.values():
            assert await consent.count_facts(buyer) == 2
    finally:
        await database.close()


def _by_order(messages: list[AbstractIncomingMessage]) -> dict[str, set[str]]:
    ids: dict[str, set[str]] = defaultdict(set)
    for message in messages:
        ids[json.loads(message.body)["order_id"]].add(str(message.message_id))
    return ids


@pytest.mark.service_errors_expected
@pytest.mark.parametrize("victim", ["orders", "consent", "disclosure"])
async def test_kill_9_mid_burst_then_restart_loses_nothing_and_repeats_only_same_ids(
    victim: str,
    register: Register,
    vhost_url: str,
    staff_url: str,
    webshop_url: str,
    rabbitmq: Broker,
) -> None:
    await _register_providers(staff_url)

    def kill_and_restart() -> None:
        assert register.kill(victim) == -9
        register.start([victim])

    received = await _burst_with(kill_and_restart, register, vhost_url, webshop_url, rabbitmq)
    for provider, messages in received.items():
        by_order = _by_order(messages)
        assert len(by_order) == BURST
        # A crash between sending and logging may repeat a disclosure, never under a new id.
        assert all(len(ids) == 1 for ids in by_order.values()), f"{provider}: one order, two ids"


async def test_sigterm_mid_burst_finishes_in_flight_work_and_repeats_nothing(
    register: Register, vhost_url: str, staff_url: str, webshop_url: str, rabbitmq: Broker
) -> None:
    await _register_providers(staff_url)

    def stop_and_restart() -> None:
        assert register.stop(["disclosure"]) == {"disclosure": 0}
        register.start(["disclosure"])

    received = await _burst_with(stop_and_restart, register, vhost_url, webshop_url, rabbitmq)
    for provider, messages in received.items():
        assert len(messages) == BURST, f"{provider} got {len(messages) - BURST} disclosures twice"
