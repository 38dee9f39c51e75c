"""The benchmark's baseline: plain aio-pika consumers in the register's topology, doing nothing.

One process per role, as the services run: `orders` only acknowledges; `consent` forwards
each order to `register.events` as `consent.changed` (persistent, confirmed, dropped while
nobody is bound), the hop the consent service makes for a person whose consent changed;
`disclosure` forwards each order to its providers' queues (persistent, confirmed). Each
acknowledges after forwarding. Same exchanges, queues, queue arguments, prefetch, persistence
and confirms as the register; none of its work.
`python -m tools.bench_baseline ROLE AMQP_URL PREFETCH`.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import aio_pika
import orjson
import uvloop
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage

from shared import topology


async def consume(role: str, url: str, prefetch: int) -> None:
    connection = await aio_pika.connect_robust(url)
    channel = await connection.channel(publisher_confirms=True)
    await channel.set_qos(prefetch_count=prefetch)
    queue = await channel.get_queue(topology.order_placed_subscription(role).queue_name)
    disclosures = await channel.get_exchange(topology.DISCLOSURES_EXCHANGE)
    register_events = await channel.get_exchange(topology.REGISTER_EVENTS_EXCHANGE)

    async def disclose(message: AbstractIncomingMessage) -> None:
        await _forward(disclosures, message)
        await message.ack()

    async def announce(message: AbstractIncomingMessage) -> None:
        await register_events.publish(
            _persistent(message.body), routing_key=topology.CONSENT_CHANGED, mandatory=False
        )
        await message.ack()

    async def acknowledge(message: AbstractIncomingMessage) -> None:
        await message.ack()

    await queue.consume({"disclosure": disclose, "consent": announce}.get(role, acknowledge))
    stop = asyncio.Event()
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(stop_signal, stop.set)
    await stop.wait()
    await connection.close()


async def _forward(disclosures: AbstractExchange, message: AbstractIncomingMessage) -> None:
    order = orjson.loads(message.body)
    for provider in dict.fromkeys(item["provider_id"] for item in order["items"]):
        await disclosures.publish(_persistent(message.body), routing_key=provider, mandatory=True)


def _persistent(body: bytes) -> aio_pika.Message:
    return aio_pika.Message(
        body, content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT
    )


if __name__ == "__main__":
    uvloop.run(consume(sys.argv[1], sys.argv[2], int(sys.argv[3])))  # the services' event loop
