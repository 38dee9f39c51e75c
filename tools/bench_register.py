"""A fresh register for the size benchmarks: N people loaded through the services' store ports,
the services started on it, and everything dropped afterwards.

The size benchmarks need registers of 10,000 to 1,000,000 people. Publishing that many orders
through RabbitMQ as the web shop does would take hours, so each person is written straight into
the stores, as each service would have left them after that person's one order: the values are
built by the services' own domain functions (`order_from_event`, `facts_from_checkout`,
`project`, `plan_disclosures`, ...) and stored by calling the store ports (`open_store`) on the
very database the service opens (`connect_database`: the SQLite file `DATA_DIR/<service>.sqlite3`
by default). Nothing is published: the consent announcement and the disclosure to the provider
are taken as sent long ago.

Person `n` has the email `person-<n>@example.fi`, one order for one of `PROVIDERS` (orders: the
order and the buyer's profile), the newsletter permission (consent: the facts, the projection,
marked announced, and the contact) and one sent disclosure (disclosure: the log entry; both
providers registered).

Each service is filled by a process of its own (`python -m tools.bench_register SERVICE PEOPLE`,
with the environment the service will get), so the three fills use every core; each keeps
`CHUNK` people in flight, so that the SQLite writer thread commits hundreds of writes at once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from services import definition
from services.consent.domain import facts_from_checkout, project
from services.consent.store import open_store as open_consent_store
from services.disclosure.domain import plan_disclosures, register_provider
from services.disclosure.store import open_store as open_disclosure_store
from services.orders.domain import order_from_event, profiles_from_order
from services.orders.store import open_store as open_orders_store
from shared import topology
from shared.contracts.consent import Contact
from shared.contracts.providers import AddProvider
from shared.contracts.webshop import OrderPlaced
from shared.database import Database, connect_database
from shared.identity import SubjectHasher
from tests.e2e import harness
from tests.e2e.harness import REPOSITORY, Register
from tests.e2e.rabbitmq import Broker
from tools.bench_orders import PROVIDERS, web_shop_order

HOLDERS = topology.ERASURE_PARTICIPANTS
"""The services that hold people's data; the erasure service starts empty."""
CHUNK = 500
"""People in flight at once in a fill: enough for the writer thread's rounds to be full."""
START_TIMEOUT = 900.0
"""Seconds a service may take to answer /ready (generous: a large register on a slow disk)."""

Say = Callable[[str], None]
Load = Callable[[OrderPlaced], Awaitable[None]]
"""Stores what one service keeps of a person after their order."""


def email(number: int) -> str:
    return f"person-{number}@example.fi"


def order_placed(number: int, position: int, occurred_at: str) -> OrderPlaced:
    """Person `number`'s order, the `position`-th of the fill, validated from JSON as the
    services' handlers validate it. Its ids are derived from `position`, in the same order:
    the three fill processes build the same event, and each index is filled in key order."""
    order = web_shop_order(
        number,
        event_id=str(uuid.UUID(int=position + 1)),
        order_id=f"S-{position:08d}",
        email=email(number),
        occurred_at=occurred_at,
        newsletter=True,
    )
    return OrderPlaced.model_validate_json(orjson.dumps(order))


# --- what each service keeps of a person: its store port's calls ---------------------------------


async def orders_loader(database: Database, hasher: SubjectHasher) -> Load:
    store = await open_orders_store(database)
    recorded_at = datetime.now(UTC)

    async def load(event: OrderPlaced) -> None:
        order = order_from_event(event, hasher, recorded_at)
        profiles = profiles_from_order(order)
        await asyncio.gather(store.add_order(order), *map(store.update_profile, profiles))

    return load


async def consent_loader(database: Database, hasher: SubjectHasher) -> Load:
    store = await open_consent_store(database)

    async def load(event: OrderPlaced) -> None:
        buyer = event.buyer
        subject = hasher(buyer.email)
        facts = facts_from_checkout(event)
        contact = Contact(email=buyer.email, first_name=buyer.first_name, last_name=buyer.last_name)
        _, _, person = await asyncio.gather(
            store.save_contact(subject, contact, event.occurred_at, str(event.event_id)),
            store.append_facts(subject, list(facts)),
            store.save_state(subject, project(facts), facts_seen=len(facts)),
        )
        # The `consent.changed` the service would have published, taken as sent.
        if person is not None and person.changed:
            await store.mark_announced(subject, person.state.summary(), person.version)

    return load


async def disclosure_loader(database: Database, hasher: SubjectHasher) -> Load:
    store = await open_disclosure_store(database)
    now = datetime.now(UTC)
    for provider_id in PROVIDERS:
        # Registered before the start, so the service declares their queues when it starts.
        command = AddProvider(provider_id=provider_id, name=provider_id, country="FI")
        await store.add_provider(register_provider(command, "bench", now))
    providers = {provider.provider_id: provider for provider in await store.providers()}

    async def load(event: OrderPlaced) -> None:
        for planned in plan_disclosures(event, providers):
            disclosure = planned.disclosure
            emails = (disclosure.buyer.email, disclosure.recipient.email)
            subjects = [hasher(address) for address in emails if address]
            # Logged when sent, as the service does: the log's time indexes grow at their end.
            sent_at = datetime.now(UTC)
            await store.record_sent(disclosure, subjects, sent_at)

    return load


LOADERS: dict[str, Callable[[Database, SubjectHasher], Awaitable[Load]]] = {
    "orders": orders_loader,
    "consent": consent_loader,
    "disclosure": disclosure_loader,
}


async def fill_service(service: str, people: int, say: Say) -> None:
    """Give `service` its data on `people` people, from the settings in the environment (run in
    the fill process of its own)."""
    settings = definition(service).settings_class()
    database = await connect_database(settings)
    try:
        hasher = SubjectHasher(settings.identity_hash_key.get_secret_value())
        load = await LOADERS[service](database, hasher)
        occurred_at = (datetime.now(UTC) - timedelta(days=1)).isoformat()
        started = time.monotonic()
        # In the order of the people's subject hashes, which most tables and indexes are keyed
        # by: each insert then lands beside the one before, and a commit rewrites a few pages
        # rather than one or more per person. (In number order, consent's fill of 100,000 took
        # 55 s rather than 40 s, 9 s of it in the kernel writing pages.) Same rows either way.
        by_subject = sorted(range(people), key=lambda number: hasher(email(number)))
        # Progress at every tenth, for the long fills only.
        report_every = max(people // 10 // CHUNK * CHUNK, 100_000)
        for first in range(0, people, CHUNK):
            positions = range(first, min(first + CHUNK, people))
            await asyncio.gather(
                *(load(order_placed(by_subject[p], p, occurred_at)) for p in positions)
            )
            if positions.stop % report_every == 0 and positions.stop < people:
                elapsed = time.monotonic() - started
                say(f"    {service}: {positions.stop:,} of {people:,} ({elapsed:.0f} s)")
    finally:
        await database.close()


async def fill(
    register: Register, people: int, say: Say, services: Sequence[str] = HOLDERS
) -> float:
    """Fill each of `services` with the register's `people`, each in a process of its own, all at
    once; the seconds it took. The databases are closed when it returns."""
    say(f"  filling {', '.join(services)} with {people:,} people")
    started = time.monotonic()
    fills = {
        service: await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tools.bench_register",
            service,
            str(people),
            cwd=REPOSITORY,
            env=register.environment(service, 0),
        )
        for service in services
    }
    done: dict[str, float] = {}

    async def finish(service: str, process: asyncio.subprocess.Process) -> None:
        if await process.wait() != 0:
            raise RuntimeError(f"filling {service} failed (exit code {process.returncode})")
        done[service] = time.monotonic() - started

    try:
        await asyncio.gather(*(finish(service, process) for service, process in fills.items()))
    finally:
        for process in fills.values():
            if process.returncode is None:
                process.kill()
                await process.wait()
    elapsed = time.monotonic() - started
    each = ", ".join(f"{service} {seconds:.0f} s" for service, seconds in done.items())
    say(f"  filled {people:,} people in {elapsed:.0f} s ({each}; {people / elapsed:,.0f}/s)")
    return elapsed


# --- a running register ----------------------------------------------------------------------------


async def start(register: Register, services: Sequence[str] = topology.SERVICES) -> None:
    """Start the services; each answers /ready only once it consumes its queues."""
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


def new_register(url: str, data_dir: Path, mongodb_url: str | None) -> Register:
    """The four services in the vhost of `url`, on SQLite files under `data_dir`, or on
    databases of their own in `mongodb_url`."""
    return Register(
        dict.fromkeys(topology.SERVICES, url),
        data_dir,
        mongodb_url,
        database_prefix=f"bench_{uuid.uuid4().hex[:6]}_",
    )


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
        register = new_register(url, scratch / "data", mongodb_url)
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
    """A real MongoDB keeps a benchmark's databases after it: drop them. (SQLite's files go with
    the run's temporary directory.)"""
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
    """A figure from a run in which a service failed, or refused a message, is no figure."""
    errors = [
        line
        for line in register.logs().splitlines()
        if '"level":"error"' in line or '"message":"dead-lettered a message"' in line
    ]
    if errors:
        raise RuntimeError(
            f"the services logged {len(errors)} errors or dead letters, the first: {errors[0]}"
        )


def people_sizes(text: str) -> tuple[int, ...]:
    """`--people 10000,100000,1000000`: the first is the baseline."""
    values = tuple(int(part.replace("_", "")) for part in text.split(","))
    if not values or values[0] <= 0 or list(values) != sorted(set(values)):
        raise argparse.ArgumentTypeError("sizes, smallest first, each once: e.g. 1000,5000")
    return values


def status_mb(pid: int, name: str) -> float:
    """A `VmRSS:`-style line of /proc/<pid>/status (in KiB there), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1]) * 1024 / 1_000_000
    raise LookupError(name)


def pids(register: Register, names: Sequence[str] = topology.SERVICES) -> dict[str, int]:
    """The process ids of the register's services that run."""
    return {
        name: process.pid
        for name in names
        if (process := register.services[name].process) is not None
    }


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


def main() -> None:
    """The fill process of one service (see `fill`)."""
    parser = argparse.ArgumentParser(description="Fill one service's store with N people.")
    parser.add_argument("service", choices=HOLDERS)
    parser.add_argument("people", type=int)
    options = parser.parse_args()

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    asyncio.run(fill_service(options.service, options.people, say))


if __name__ == "__main__":
    main()
