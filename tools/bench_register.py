"""A fresh register for the size benchmarks: filled with N people through the services' own
code, started, and dropped afterwards.

The scale and memory benchmarks need registers of 10,000 to 1,000,000 people. Publishing that
many orders through RabbitMQ as the web shop does runs at about 100 orders a second on the
build machine, so instead each person's order is put through the very use cases the services
run when it arrives (`record_order`, `record_checkout`, `disclose_order`), on the databases the
services will open afterwards: the documents, indexes and projections are what the services
write. Only publishing is left out (the fill has no broker): the consent announcement and the
disclosure to the provider are taken as sent long ago.

Person `n` has the email `person-<n>@example.fi`, one order for one of `PROVIDERS`, the
newsletter permission (so is in its audience) and one disclosure, sent.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import orjson

from services.consent.publisher import ConsentEvents
from services.consent.service import ConsentService
from services.consent.settings import ConsentSettings
from services.consent.store import ConsentStore
from services.disclosure.domain import register_provider
from services.disclosure.publisher import ProviderQueues
from services.disclosure.service import DisclosureService
from services.disclosure.settings import DisclosureSettings
from services.disclosure.store import DisclosureStore
from services.orders.service import OrdersService
from services.orders.settings import OrdersSettings
from services.orders.store import OrdersStore
from shared import topology
from shared.contracts.providers import AddProvider
from shared.contracts.webshop import OrderPlaced
from shared.database import DatabaseConnection, connect_database
from shared.identity import SubjectHasher
from shared.settings import ServiceSettings
from tests.e2e import harness
from tests.e2e.harness import Register
from tests.e2e.rabbitmq import Broker
from tools.bench_orders import PROVIDERS, web_shop_order

HOLDERS = topology.ERASURE_PARTICIPANTS
"""The services that hold people's data; the erasure service starts empty."""
CONCURRENCY = 64
"""People in flight at once: a real MongoDB answers them in parallel, and the embedded store's
journal commits their writes in groups, one fsync each."""
SETTINGS: dict[str, type[ServiceSettings]] = {
    "orders": OrdersSettings,
    "consent": ConsentSettings,
    "disclosure": DisclosureSettings,
}

START_TIMEOUT = 900.0
"""Seconds a service may take to load its data and answer /ready."""

Say = Callable[[str], None]


def email(number: int) -> str:
    return f"person-{number}@example.fi"


def order_placed(number: int, occurred_at: str) -> OrderPlaced:
    """Person `number`'s order, validated from JSON as the services' handlers validate it."""
    order = web_shop_order(
        number,
        event_id=str(uuid.uuid4()),
        order_id=f"S-{number:08d}",
        email=email(number),
        occurred_at=occurred_at,
        newsletter=True,
    )
    return OrderPlaced.model_validate_json(orjson.dumps(order))


class _Published:
    """Stands for the services' publishers: what they would publish is taken as sent."""

    async def changed(self, event: Any) -> None:
        """ConsentEvents.changed: the announcement of the person's consent."""

    async def send(self, disclosure: Any) -> None:
        """ProviderQueues.send: the disclosure to the provider."""


async def _open(register: Register, service: str) -> DatabaseConnection:
    """The database the service will open: read from the environment Register gives it."""
    env = register.environment(service, 0)
    settings = SETTINGS[service](
        mongodb_url=env.get("MONGODB_URL"),
        mongodb_database=env.get("MONGODB_DATABASE"),
        data_dir=env["DATA_DIR"],
        identity_hash_key=env["IDENTITY_HASH_KEY"],
    )
    return await connect_database(settings)


async def _handlers(
    service: str, connection: DatabaseConnection, hasher: SubjectHasher
) -> Callable[[OrderPlaced], Awaitable[None]]:
    """What `service` does with an order, on the database it will use (indexes first, as at
    its start, so that every query is served by one)."""
    published = _Published()
    # Erasure and the providers' logins are reached only by commands, which the fill never sends.
    unused: Any = None
    database = connection.database
    if service == "orders":
        orders_store = OrdersStore(database)
        await orders_store.create_indexes()
        return OrdersService(orders_store, hasher, unused).record_order
    if service == "consent":
        consent_store = ConsentStore(database)
        await consent_store.create_indexes()
        events = cast("ConsentEvents", published)
        return ConsentService(consent_store, hasher, events, unused).record_checkout
    disclosure_store = DisclosureStore(database)
    await disclosure_store.create_indexes()
    now = datetime.now(UTC)
    for provider_id in PROVIDERS:
        # Registered before the start, so the service declares their queues when it starts.
        command = AddProvider(provider_id=provider_id, name=provider_id, country="FI")
        await disclosure_store.add_provider(register_provider(command, "bench", now))
    queues = cast("ProviderQueues", published)
    return DisclosureService(disclosure_store, queues, hasher, unused, unused).disclose_order


async def fill(
    register: Register, people: int, say: Say, services: Sequence[str] = HOLDERS
) -> None:
    """Give each of `services` the register's `people`, then close the databases (the
    embedded store's directory stays locked while a client has it open)."""
    # Each use case logs every order at INFO; a million lines would only slow the fill.
    logging.getLogger().setLevel(logging.WARNING)
    connections = {service: await _open(register, service) for service in services}
    try:
        hasher = SubjectHasher(register.environment(services[0], 0)["IDENTITY_HASH_KEY"])
        handlers = [await _handlers(s, c, hasher) for s, c in connections.items()]
        occurred_at = (datetime.now(UTC) - timedelta(days=1)).isoformat()
        numbers = iter(range(people))
        started = time.monotonic()
        # Progress for the long fills only, at every tenth.
        report_every = max(people // 10, 50_000)

        async def worker() -> None:
            # Workers pull the next person: bounded concurrency without a task per person.
            for number in numbers:
                order = order_placed(number, occurred_at)
                await asyncio.gather(*(handle(order) for handle in handlers))
                if (number + 1) % report_every == 0:
                    say(f"    filled {number + 1:,} of {people:,}")

        await asyncio.gather(*(worker() for _ in range(min(CONCURRENCY, people))))
        elapsed = time.monotonic() - started
        say(f"  filled {people:,} people in {elapsed:.0f} s ({people / elapsed:,.0f}/s)")
    finally:
        for connection in connections.values():
            await connection.close()


async def start(register: Register, services: Sequence[str] = topology.SERVICES) -> None:
    """Start the services; each answers /ready only once it consumes its queues."""
    # A large embedded store takes longer to load than the minute the tests allow a service.
    ready_timeout, harness.READY_TIMEOUT = harness.READY_TIMEOUT, START_TIMEOUT
    try:
        await asyncio.to_thread(register.start, services)
    except AssertionError as error:
        # The harness shows the log's tail; a process killed by a signal leaves none.
        codes = {
            name: service.process.poll()
            for name, service in register.services.items()
            if service.process is not None
        }
        raise RuntimeError(f"a service did not start; exit codes {codes}") from error
    finally:
        harness.READY_TIMEOUT = ready_timeout


@asynccontextmanager
async def running_register(
    broker: Broker,
    mongodb_url: str | None,
    people: int,
    scratch: Path,
    say: Say,
    services: Sequence[str] = topology.SERVICES,
) -> AsyncIterator[tuple[str, Register]]:
    """A fresh vhost with `services` running on a register of `people` people: yields the
    vhost's URL and the register; afterwards stops it, fails on any error a service logged,
    and drops vhost and databases."""
    async with broker.fresh_vhost() as url:
        register = Register(
            dict.fromkeys(topology.SERVICES, url),
            scratch / "data",
            mongodb_url,
            database_prefix=f"bench_{uuid.uuid4().hex[:6]}_",
        )
        try:
            await fill(register, people, say, [s for s in HOLDERS if s in services])
            try:
                await start(register, services)
                yield url, register
            finally:
                await asyncio.to_thread(register.stop)
            check_logs(register)
        finally:
            await drop(register, services)


async def drop(register: Register, services: Sequence[str]) -> None:
    """A real MongoDB keeps a benchmark's databases after it: drop them. (The embedded store's
    files go with the run's temporary directory.)"""
    if register.mongodb_url is None:
        return
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(register.mongodb_url)
    try:
        for service in services:
            await client.drop_database(register.database_name(service))
    finally:
        await client.close()


def check_logs(register: Register) -> None:
    """A figure from a run in which a service failed is no figure."""
    errors = [line for line in register.logs().splitlines() if '"level":"error"' in line]
    if errors:
        raise RuntimeError(
            f"the services logged {len(errors)} errors; logs under {register.data_dir}"
        )


def sizes(text: str) -> tuple[int, int]:
    """`--people small,large`."""
    values = tuple(int(part.replace("_", "")) for part in text.split(","))
    if len(values) != 2 or not 0 < values[0] < values[1]:
        raise argparse.ArgumentTypeError("two sizes, the smaller first: e.g. 500,5000")
    return values[0], values[1]


def broker_from_environment() -> Broker:
    """The broker `make bench` uses (a fresh vhost is made in it for each register)."""
    return Broker(
        os.environ.get("RABBITMQ_URL", "amqp://guest:guest@localhost:5672/"),
        os.environ.get("RABBITMQ_MANAGEMENT_URL", "http://localhost:15672"),
    )
