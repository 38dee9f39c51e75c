"""shared.messaging's delivery rules against the real RabbitMQ, in one process."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from typing import ClassVar

import pytest
from faststream.rabbit import RabbitBroker, RabbitRouter
from prometheus_client import REGISTRY
from pydantic import TypeAdapter
from pymongo.errors import AutoReconnect

from shared.contracts.webshop import OrderPlaced
from shared.messaging import make_broker, subscribe_events
from shared.runtime import declare_dead_letter_queues
from shared.senders import FROM_WEBSHOP
from shared.settings import ServiceSettings
from shared.topology import DELIVERY_LIMIT, order_placed_subscription
from tests.e2e.harness import QueueReader, WebShop
from tests.factories import order_placed


class PoisonSettings(ServiceSettings):
    service_name: ClassVar[str] = "poison-test"


@pytest.fixture
async def failing_consumer(vhost_url: str) -> AsyncIterator[list[float]]:
    """A consumer of order.placed whose database write always fails; yields delivery times."""
    settings = PoisonSettings(rabbitmq_url=vhost_url, mongodb_url="memory://")
    subscription = order_placed_subscription(settings.service_name)
    router = RabbitRouter()
    attempts: list[float] = []

    @subscribe_events(
        router, subscription, TypeAdapter(OrderPlaced), settings, senders=FROM_WEBSHOP
    )
    async def store_order(event: OrderPlaced) -> None:
        attempts.append(time.monotonic())
        raise AutoReconnect("the database is down")

    broker: RabbitBroker = make_broker(settings)
    broker.include_router(router)
    await broker.start()
    await declare_dead_letter_queues(broker)
    try:
        yield attempts
    finally:
        await broker.stop()


def _count(queue: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "register_messages_total", {"queue": queue, "outcome": outcome}
    )
    return value or 0.0


async def test_a_message_that_keeps_failing_is_retried_with_back_off_then_dead_lettered(
    failing_consumer: list[float], vhost_url: str
) -> None:
    queue = "poison-test.order-placed"
    retried_before, dead_before = _count(queue, "retried"), _count(queue, "dead_lettered")
    order = order_placed()
    async with WebShop(vhost_url) as shop, QueueReader(vhost_url) as reader:
        await shop.publish("order.placed", order, message_id=order["event_id"])
        [dead] = await reader.receive(f"dead-letter.{queue}", 1, within=30)
        reason = str(dead.headers["x-rejection-reason"])
        assert f"failed on all {DELIVERY_LIMIT} deliveries" in reason
        assert "AutoReconnect" in reason and "test_delivery_rules.py" in reason
        assert "database is down" not in reason  # error texts can carry data: never copied
        # Settled: nothing waits in the queue, and the message was not delivered again.
        assert await reader.depth(queue) == 0
    attempts = failing_consumer
    assert len(attempts) == DELIVERY_LIMIT
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert all(gap >= 0.2 for gap in gaps), f"redelivered in a hot loop: {gaps}"
    assert gaps == sorted(gaps), f"back-off does not grow: {gaps}"
    assert _count(queue, "retried") - retried_before == DELIVERY_LIMIT - 1
    assert _count(queue, "dead_lettered") - dead_before == 1
