"""What the end-to-end tests do alike: staff's `rekisteri` run to success and its JSON read,
a provider registered, a connection of a party, what the broker refuses it, waiting on the
broker, the audit log a service stored, and a person made of values no one else has."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote, urlsplit

import aio_pika
from aio_pika.abc import AbstractConnection

from shared.audit import audit_records
from shared.topology import SERVICES
from tests.e2e.harness import (
    Register,
    consume_one,
    declare,
    everything_stored,
    open_database,
    publish_to,
    refused,
    rekisteri,
)
from tests.e2e.rabbitmq import Broker
from tests.factories import person

# --- staff's tool ---------------------------------------------------------------------------


def run(staff_url: str, *arguments: str) -> str:
    """The tool's standard output; fails the test when the command fails."""
    done = rekisteri(staff_url, *arguments)
    assert done.returncode == 0, done.stderr
    return done.stdout


def listed(staff_url: str, *arguments: str) -> list[dict[str, Any]]:
    """The rows `rekisteri <arguments> --json` prints."""
    rows = json.loads(run(staff_url, *arguments, "--json"))
    assert isinstance(rows, list)
    return rows


def json_document(staff_url: str, *arguments: str) -> dict[str, Any]:
    """The JSON object `rekisteri <arguments>` prints (with `--json` where a command asks for it)."""
    document = json.loads(run(staff_url, *arguments))
    assert isinstance(document, dict)
    return document


def add_provider(
    staff_url: str, provider_id: str = "spa-oy", name: str = "Kylpylä Oy", country: str = "FI"
) -> str:
    """Register a provider, as staff do; what the tool said."""
    return run(staff_url, "providers", "add", provider_id, "--name", name, "--country", country)


def erasure_receipt(staff_url: str, *naming: str) -> tuple[str, dict[str, Any]]:
    """A subject-request erasure of the person `naming` names, waited for: what the tool wrote,
    and the receipt it ends with."""
    done = rekisteri(
        staff_url, "erasure", "request", *naming, "--reason", "subject-request", "--wait"
    )
    assert done.returncode == 0, done.stderr
    receipt = json.loads(done.stdout[done.stdout.index("{") :])
    assert isinstance(receipt, dict)
    return done.stdout, receipt


# --- a party on the broker ------------------------------------------------------------------


@asynccontextmanager
async def connected(url: str) -> AsyncIterator[AbstractConnection]:
    connection = await aio_pika.connect(url)
    try:
        yield connection
    finally:
        await connection.close()


async def queues_of(rabbitmq: Broker, vhost_url: str) -> set[str]:
    """The names of the queues in the register's virtual host, as the management API lists them."""
    vhost = urlsplit(vhost_url).path[1:]
    listed = await rabbitmq.management("GET", f"/api/queues/{quote(vhost, safe='')}?columns=name")
    return {queue["name"] for queue in listed}


async def assert_refused(
    connection: AbstractConnection,
    *,
    consuming: Iterable[str],
    publishing: Iterable[tuple[str, str]],
    declaring: str,
) -> None:
    """The broker refuses the connection's user each of these: to consume from each queue, to
    publish to each (exchange, routing key), and to declare the queue `declaring`."""
    for queue in sorted(consuming):
        assert await refused(connection, consume_one(queue)), queue
    for exchange, routing_key in publishing:
        assert await refused(connection, publish_to(exchange, routing_key)), exchange
    assert await refused(connection, declare(declaring)), declaring


async def until(
    check: Callable[[], Awaitable[bool]], within: float = 20, every: float = 0.05
) -> None:
    """Wait until `check()` holds, for what the broker only reports a moment after it happened;
    fail with a timeout after `within` seconds."""
    async with asyncio.timeout(within):
        while True:
            if await check():
                return
            await asyncio.sleep(every)


# --- what a service stored ------------------------------------------------------------------


async def stored_audit_log(register: Register, service: str) -> list[dict[str, Any]]:
    """Every entry of the service's audit log in its own database, read with the service stopped."""
    database = await open_database(register, service)
    try:
        return [
            entry.model_dump()
            for entry in await audit_records(database).entries(None, None, limit=10_000)
        ]
    finally:
        await database.close()


async def values_stored(register: Register, values: Collection[str]) -> dict[str, list[str]]:
    """Which of `values` any file of a service's store holds (in any case: in a row, a free page
    or the write-ahead log), by service; a service that holds none is left out."""
    found = {}
    for service in SERVICES:
        stored = await everything_stored(register, service)
        if held := [value for value in values if value.lower() in stored]:
            found[service] = held
    return found


# --- people ---------------------------------------------------------------------------------


def person_of(
    values: Mapping[str, str], email: str | None, postal_code: str, city: str, **extra: Any
) -> dict[str, Any]:
    """A person the web shop knows by the name, phone, birth date and street in `values`, so
    that a test can look for each of those values everywhere afterwards."""
    return person(
        values["first_name"],
        values["last_name"],
        email,
        phone=values["phone"],
        birth_date=values["birth_date"],
        address={
            "street": values["street"],
            "postal_code": postal_code,
            "city": city,
            "country": "FI",
        },
        **extra,
    )
