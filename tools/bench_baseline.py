"""The benchmark's baseline: plain aio-pika consumers in the register's topology, doing nothing.

One process per role, as the services run: `orders` and `consent` only acknowledge;
`disclosure` forwards each order to its providers' queues (persistent, confirmed) and then
acknowledges. Same exchanges, queues, queue arguments, prefetch, persistence and confirms as
the register; none of its work. `python -m tools.bench_baseline ROLE AMQP_URL PREFETCH`.
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

    async def forward(message: AbstractIncomingMessage) -> None:
        await _forward(disclosures, message)
        await message.ack()

    async def acknowledge(message: AbstractIncomingMessage) -> None:
        await message.ack()

    await queue.consume(forward if role == "disclosure" else acknowledge)
    stop = asyncio.Event()
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(stop_signal, stop.set)
    await stop.wait()
    await connection.close()


async def _forward(disclosures: AbstractExchange, message: AbstractIncomingMessage) -> None:
    order = orjson.loads(message.body)
    for provider in dict.fromkeys(item["provider_id"] for item in order["items"]):
        await disclosures.publish(
            aio_pika.Message(
                message.body,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=provider,
            mandatory=True,
        )


if __name__ == "__main__":
    uvloop.run(consume(sys.argv[1], sys.argv[2], int(sys.argv[3])))  # the services' event loop
