"""`make bench BENCH_ARGS=--framework`: what FastStream itself costs per message, against aio-pika.

The register's services consume and publish through FastStream; the `make bench` baseline uses
aio-pika directly. This measures the difference on the same broker and queue settings as the
services (a durable quorum queue, prefetch 64, persistent messages, publisher confirms, manual
acknowledgement after the handler), with a handler that only takes the body as a dictionary:
no store, no rules of the register's own. Each measurement runs in a fresh process on a web
shop order's body; the two clients take turns (aio-pika, FastStream, FastStream, aio-pika, ...)
so that a machine whose speed drifts weighs on both alike.

Reported: CPU microseconds per message to consume (from a full queue) and to publish, the
median of each client's runs, and what the difference comes to per order in the register
(three consumers of `order.placed`; consent and disclosure each publish once).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import aio_pika
import orjson

from tools.bench_orders import web_shop_order
from tools.bench_register import broker_from_environment

CLIENTS = ("aio-pika", "faststream")
KINDS = ("consume", "publish")
PREFETCH = 64
IN_FLIGHT = 64
QUEUE = "framework-bench"
QUORUM = {"x-queue-type": "quorum"}
CONSUMED_PER_ORDER = 3
PUBLISHED_PER_ORDER = 2


def body() -> bytes:
    return orjson.dumps(
        web_shop_order(
            0,
            event_id="00000000-0000-4000-8000-000000000001",
            order_id="F-000001",
            email="buyer-0@example.fi",
            occurred_at="2026-12-01T10:00:00+00:00",
            newsletter=True,
        )
    )


async def empty_queue(url: str) -> None:
    """The queue, declared and empty: each measurement starts from the same state."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(QUEUE, durable=True, arguments=QUORUM)
        await queue.purge()
    finally:
        await connection.close()


async def fill(url: str, messages: int) -> None:
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        payload = body()
        window = asyncio.Semaphore(IN_FLIGHT)

        async def publish() -> None:
            async with window:
                await channel.default_exchange.publish(
                    aio_pika.Message(payload, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=QUEUE,
                )

        await asyncio.gather(*(publish() for _ in range(messages)))
    finally:
        await connection.close()


async def consume_with_aio_pika(url: str, messages: int) -> float:
    connection = await aio_pika.connect(url)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=PREFETCH)
    queue = await channel.get_queue(QUEUE)
    done, seen = asyncio.Event(), 0

    async def handle(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal seen
        json.loads(message.body)
        await message.ack()
        seen += 1
        if seen == messages:
            done.set()

    started = time.process_time()
    await queue.consume(handle)
    await done.wait()
    used = time.process_time() - started
    await connection.close()
    return used


async def consume_with_faststream(url: str, messages: int) -> float:
    from faststream import AckPolicy
    from faststream.rabbit import RabbitBroker, RabbitQueue
    from faststream.rabbit.schemas import Channel

    broker = RabbitBroker(
        url,
        default_channel=Channel(prefetch_count=PREFETCH, publisher_confirms=True),
        log_level=10,  # as the services: per-message lines only at DEBUG
    )
    done, seen = asyncio.Event(), 0

    @broker.subscriber(
        RabbitQueue(QUEUE, durable=True, arguments=QUORUM),
        ack_policy=AckPolicy.ACK,
        no_reply=True,
    )
    async def handle(order: dict[str, Any]) -> None:
        nonlocal seen
        seen += 1
        if seen == messages:
            done.set()

    await broker.connect()
    started = time.process_time()
    await broker.start()
    await done.wait()
    used = time.process_time() - started
    await broker.stop()
    return used


async def publish_with(client: str, url: str, messages: int) -> float:
    payload = body()
    window = asyncio.Semaphore(IN_FLIGHT)
    if client == "aio-pika":
        connection = await aio_pika.connect(url)
        channel = await connection.channel(publisher_confirms=True)

        async def publish() -> None:
            async with window:
                await channel.default_exchange.publish(
                    aio_pika.Message(
                        payload,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        content_type="application/json",
                        message_id="m",
                    ),
                    routing_key=QUEUE,
                    mandatory=True,
                )

        close = connection.close
    else:
        from faststream.rabbit import RabbitBroker, RabbitQueue
        from faststream.rabbit.schemas import Channel

        broker = RabbitBroker(
            url,
            default_channel=Channel(publisher_confirms=True, on_return_raises=True),
            log_level=10,
        )
        publisher = broker.publisher(
            RabbitQueue(QUEUE, durable=True, arguments=QUORUM),
            persist=True,
            mandatory=True,
            content_type="application/json",
        )
        await broker.start()

        async def publish() -> None:
            async with window:
                await publisher.publish(payload, message_id="m")

        close = broker.stop
    started = time.process_time()
    await asyncio.gather(*(publish() for _ in range(messages)))
    used = time.process_time() - started
    await close()
    return used


async def measure_one(kind: str, client: str, url: str, messages: int) -> float:
    """CPU seconds of this process for `messages` messages."""
    await empty_queue(url)
    if kind == "publish":
        return await publish_with(client, url, messages)
    await fill(url, messages)
    if client == "aio-pika":
        return await consume_with_aio_pika(url, messages)
    return await consume_with_faststream(url, messages)


def run_one(kind: str, client: str, url: str, messages: int) -> float:
    """One measurement in a fresh process: microseconds of CPU per message."""
    done = subprocess.run(
        [sys.executable, "-m", "tools.bench_framework", "--one", kind, client, url, str(messages)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip()) / messages * 1e6


async def main(arguments: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="make bench BENCH_ARGS=--framework", description=__doc__)
    parser.add_argument("--messages", type=int, default=10_000, help="per run (default 10,000)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per client (default 3)")
    parser.add_argument("--json", type=argparse.FileType("w"), help="also write the figures")
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    options = parser.parse_args(arguments)
    if options.one:
        kind, client, url, messages = options.one
        print(await measure_one(kind, client, url, int(messages)))
        return
    figures: dict[str, dict[str, list[float]]] = {kind: {c: [] for c in CLIENTS} for kind in KINDS}
    async with broker_from_environment().fresh_vhost() as url:
        for round_ in range(options.rounds):
            # aio-pika first in even rounds, FastStream first in odd ones.
            order = CLIENTS if round_ % 2 == 0 else CLIENTS[::-1]
            for kind in KINDS:
                for client in order:
                    measured = await asyncio.to_thread(run_one, kind, client, url, options.messages)
                    figures[kind][client].append(measured)
                    print(f"  {kind} {client}: {measured:.0f} µs", file=sys.stderr, flush=True)
    medians = {k: {c: statistics.median(v) for c, v in runs.items()} for k, runs in figures.items()}
    extra = {kind: medians[kind]["faststream"] - medians[kind]["aio-pika"] for kind in KINDS}
    per_order = CONSUMED_PER_ORDER * extra["consume"] + PUBLISHED_PER_ORDER * extra["publish"]
    print(f"{'CPU µs per message (median)':<32}{'aio-pika':>10}{'FastStream':>12}{'ratio':>8}")
    for kind in KINDS:
        pika, fast = medians[kind]["aio-pika"], medians[kind]["faststream"]
        print(f"{kind:<32}{pika:>10.0f}{fast:>12.0f}{fast / pika:>8.2f}")
    print(
        f"FastStream's extra CPU per order in the register ({CONSUMED_PER_ORDER} consumed, "
        f"{PUBLISHED_PER_ORDER} published): {per_order / 1000:.2f} ms"
    )
    if options.json:
        json.dump(
            {"runs": figures, "median": medians, "extra_ms_per_order": per_order / 1000},
            options.json,
            indent=2,
        )


if __name__ == "__main__":
    asyncio.run(main())
