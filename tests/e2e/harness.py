"""The register as separate OS processes, and the parties around it, for end-to-end tests.

`provision` gives every party its own RabbitMQ user with the real `rekisteri rabbitmq
provision`. `Register` starts the services with `python -m services.<name>` (the command of
each one's definition) exactly as ops would, each as its own user, waits for each to report
ready, and stops them with SIGTERM. `WebShop` publishes and `QueueReader` consumes with plain
aio-pika, as the real parties do; `rekisteri` runs the real CLI.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractIncomingMessage,
    AbstractRobustConnection,
)
from aiormq.exceptions import ChannelAccessRefused

from services import definition
from shared.database import Database, MongoDatabase
from shared.identity import SubjectHasher
from shared.permissions import password_variable, provisioned_parties
from shared.sqlite import SqliteDatabase
from shared.topology import SERVICES
from tests.e2e.rabbitmq import Broker

T = TypeVar("T")
REPOSITORY = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 60.0
NOT_INHERITED = {"MONGODB_URL", "RABBITMQ_MANAGEMENT_USER", "RABBITMQ_MANAGEMENT_PASSWORD"}
STOP_TIMEOUT = 30.0


# Below Linux's default range of ports for outgoing connections (32768-60999): a port from that
# range can be taken by any new connection between the check and the service's bind.
LISTEN_PORTS = range(20_000, 32_768)


def free_port(taken: Collection[int] = ()) -> int:
    """A port nobody listens on now, outside the outgoing range and not among `taken` (the
    ports given to the other services of the same register, which bind them only later)."""
    while True:
        port = secrets.choice(LISTEN_PORTS)
        if port in taken:
            continue
        with closing(socket.socket()) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


@dataclass
class ServiceProcess:
    name: str
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ready", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass(frozen=True)
class Logins:
    """The AMQP URL of each party provisioned in a test's virtual host."""

    services: Mapping[str, str]
    webshop: str
    staff: Mapping[str, str]
    """Staff name → URL."""


def run_provision(
    rabbitmq: Broker,
    vhost_url: str,
    user_prefix: str,
    *arguments: str,
    passwords: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`rekisteri rabbitmq provision` for the vhost of `vhost_url`, as its administrator, with
    the given passwords in the environment."""
    admin_user, admin_password = rabbitmq.admin_credentials
    return rekisteri(
        vhost_url,
        "rabbitmq",
        "provision",
        "--vhost",
        urlsplit(vhost_url).path[1:],
        "--user-prefix",
        user_prefix,
        *arguments,
        env={
            "RABBITMQ_MANAGEMENT_URL": rabbitmq.management_url,
            "RABBITMQ_MANAGEMENT_USER": admin_user,
            "RABBITMQ_MANAGEMENT_PASSWORD": admin_password,
            **(passwords or {}),
        },
    )


def provision(rabbitmq: Broker, vhost_url: str, user_prefix: str, staff: Iterable[str]) -> Logins:
    """Every party's user in the vhost, by the real `rekisteri rabbitmq provision`."""
    vhost = urlsplit(vhost_url).path[1:]
    parties = provisioned_parties(staff)
    passwords = {party.name: secrets.token_urlsafe(16) for party in parties}
    done = run_provision(
        rabbitmq,
        vhost_url,
        user_prefix,
        *(f"--staff={name}" for name in staff),
        passwords={password_variable(name): password for name, password in passwords.items()},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "", "every password was given: none is generated"

    def url(party: str) -> str:
        return rabbitmq.url_for(vhost, user_prefix + party, passwords[party])

    return Logins(
        services={service: url(service) for service in SERVICES},
        webshop=url("webshop"),
        staff={name: url(f"staff-{name}") for name in staff},
    )


@dataclass
class Register:
    """The four services as processes sharing one vhost and one data directory, each logged
    in to RabbitMQ as its own user."""

    rabbitmq_urls: Mapping[str, str]
    data_dir: Path
    mongodb_url: str | None = None
    database_prefix: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)
    service_env: dict[str, dict[str, str]] = field(default_factory=dict)
    """Settings only one service gets."""
    services: dict[str, ServiceProcess] = field(default_factory=dict)

    def environment(self, name: str, port: int) -> dict[str, str]:
        # No service holds an administrator's credentials, though staff's environment may.
        env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
        env.update(
            RABBITMQ_URL=self.rabbitmq_urls[name],
            RABBITMQ_USER_PREFIX=user_prefix(self.rabbitmq_urls[name], name),
            DATA_DIR=str(self.data_dir),
            HEALTH_PORT=str(port),
            IDENTITY_HASH_KEY=IDENTITY_HASH_KEY,
        )
        # Later settings win: the register's, then one service's own.
        env.update(self.extra_env)
        env.update(self.service_env.get(name, {}))
        if self.mongodb_url is not None:
            env.update(MONGODB_URL=self.mongodb_url, MONGODB_DATABASE=self.database_name(name))
        return env

    def database_name(self, service: str) -> str:
        return f"{self.database_prefix}{service}"

    def start(self, names: Iterable[str] = SERVICES) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for name in names:
            taken = {other.port for other in self.services.values()}
            service = self.services.get(name) or ServiceProcess(
                name, free_port(taken), self.data_dir / f"{name}.log"
            )
            self.services[name] = service
            with service.log_path.open("ab") as log:
                service.process = subprocess.Popen(
                    definition(name).command(),
                    cwd=REPOSITORY,
                    env=self.environment(name, service.port),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        for name in names:
            self._wait_ready(self.services[name])

    def _wait_ready(self, service: ServiceProcess) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while not service.ready():
            assert service.process is not None
            if service.process.poll() is not None:
                raise AssertionError(f"{service.name} exited early:\n{service.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{service.name} not ready in time:\n{service.log()[-3000:]}")
            time.sleep(0.05)

    def stop(self, names: Iterable[str] | None = None) -> dict[str, int]:
        """SIGTERM, then wait: returns each service's exit code."""
        chosen = [self.services[n] for n in (names or list(self.services))]
        running = [s for s in chosen if s.process is not None and s.process.poll() is None]
        for service in running:
            assert service.process is not None
            service.process.send_signal(signal.SIGTERM)
        codes = {}
        for service in chosen:
            assert service.process is not None
            try:
                codes[service.name] = service.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                service.process.kill()
                codes[service.name] = service.process.wait()
        return codes

    def kill(self, name: str) -> int:
        """SIGKILL: the process gets no chance to finish anything."""
        process = self.services[name].process
        assert process is not None
        process.kill()
        return process.wait()

    def logs(self) -> str:
        return "\n".join(service.log() for service in self.services.values())


def user_prefix(rabbitmq_url: str, service: str) -> str:
    """What provisioning put before the service's user (`<prefix><service>`); none for a
    service logged in as someone else (the administrator, in some tests)."""
    user = unquote(urlsplit(rabbitmq_url).username or "")
    return user.removesuffix(service) if user.endswith(service) else ""


IDENTITY_HASH_KEY = "e2e-test-key"
HASH = SubjectHasher(IDENTITY_HASH_KEY)
"""The keyed hash the register's services use, to find a person through a store port."""


async def open_database(register: Register, service: str) -> Database:
    """A stopped service's database, to check what it stored through its store port; close it
    after."""
    if register.mongodb_url is not None:
        from pymongo import AsyncMongoClient

        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            register.mongodb_url, tz_aware=True
        )
        return MongoDatabase(client[register.database_name(service)], client)
    return await SqliteDatabase.open(register.data_dir / f"{service}.sqlite3")


async def everything_stored(register: Register, service: str) -> str:
    """All a stopped service keeps, as one lower-case text to search for a person's values: on
    SQLite the raw bytes of its files (free pages and write-ahead log included), on MongoDB
    every document of its database."""
    if register.mongodb_url is None:
        files = sorted(register.data_dir.glob(f"{service}.sqlite3*"))
        assert files, f"no SQLite file of {service} under {register.data_dir}"
        return b"".join(path.read_bytes() for path in files).decode(errors="replace").lower()
    database = await open_database(register, service)
    assert isinstance(database, MongoDatabase)
    try:
        documents = []
        for collection in await database.documents.list_collection_names():
            documents += await database.documents[collection].find({}).to_list(None)
    finally:
        await database.close()
    return json.dumps(documents, default=str, ensure_ascii=False).lower()


async def eventually(read: Callable[[], T], done: Callable[[T], bool], within: float = 20.0) -> T:
    """Call the blocking `read` until `done(result)`; fail with the last result after `within`."""
    deadline = time.monotonic() + within
    while True:
        result = await asyncio.to_thread(read)
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"still not there after {within:g} s: {result!r}"[:2000])
        await asyncio.sleep(0.1)


def rekisteri(
    rabbitmq_url: str,
    *arguments: str,
    timeout: float = 30,
    input_text: str | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real command-line tool, as an operator would (as the user in `rabbitmq_url`)."""
    return subprocess.run(
        [sys.executable, "-m", "rekisteri", *arguments],
        cwd=REPOSITORY,
        env={**os.environ, **(env or {}), "RABBITMQ_URL": rabbitmq_url},
        input=input_text,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# --- what a party may try, and whether the broker refuses it ----------------------------------

Attempt = Callable[[AbstractChannel], Awaitable[object]]


async def refused(connection: AbstractConnection, attempt: Attempt) -> bool:
    """Whether the broker refuses the attempt (ACCESS_REFUSED closes only that channel)."""
    channel = await connection.channel(publisher_confirms=True)
    try:
        await attempt(channel)
    except ChannelAccessRefused:
        return True
    await channel.close()
    return False


def consume_one(queue_name: str) -> Attempt:
    async def attempt(channel: AbstractChannel) -> object:
        queue = await channel.get_queue(queue_name, ensure=False)
        return await queue.get(fail=False)

    return attempt


def publish_to(exchange_name: str, routing_key: str) -> Attempt:
    async def attempt(channel: AbstractChannel) -> object:
        exchange = (
            await channel.get_exchange(exchange_name, ensure=False)
            if exchange_name
            else channel.default_exchange
        )
        return await exchange.publish(aio_pika.Message(b"{}"), routing_key=routing_key)

    return attempt


def declare(queue_name: str) -> Attempt:
    async def attempt(channel: AbstractChannel) -> object:
        return await channel.declare_queue(queue_name, durable=True)

    return attempt


class AmqpParty:
    def __init__(self, url: str) -> None:
        self._url = url
        self.connection: AbstractRobustConnection | None = None
        self.channel: AbstractChannel | None = None

    async def __aenter__(self) -> AmqpParty:
        self.connection = await aio_pika.connect_robust(self._url)
        self.channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self.connection is not None:
            await self.connection.close()


class WebShop(AmqpParty):
    async def publish(
        self, routing_key: str, payload: dict[str, Any] | bytes, **properties: Any
    ) -> None:
        """As the web shop must: with the AMQP `user_id` set to its login, which is how the
        services know the message is the web shop's."""
        assert self.channel is not None
        exchange = await self.channel.get_exchange("webshop", ensure=False)
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        message = aio_pika.Message(
            body,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            **{"user_id": unquote(urlsplit(self._url).username or "guest"), **properties},
        )
        await exchange.publish(message, routing_key=routing_key)


class QueueReader(AmqpParty):
    """Reads a queue as its consumer would (a provider on its own queue, ops on a DLQ)."""

    async def receive(
        self, queue_name: str, count: int, within: float = 20.0
    ) -> list[AbstractIncomingMessage]:
        """Exactly the next `count` messages (acknowledged), or fail after `within` seconds."""
        assert self.channel is not None
        queue = await self.channel.get_queue(queue_name, ensure=True)
        received: list[AbstractIncomingMessage] = []
        async with asyncio.timeout(within):
            async with queue.iterator() as messages:
                async for message in messages:
                    await message.ack()
                    received.append(message)
                    if len(received) == count:
                        break
        return received

    async def depth(self, queue_name: str) -> int:
        """Messages waiting in the queue (not counting ones a consumer holds)."""
        assert self.channel is not None
        queue = await self.channel.declare_queue(queue_name, passive=True)
        return int(queue.declaration_result.message_count or 0)
