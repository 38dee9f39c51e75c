"""Least privilege on the real broker: every party connects as its own provisioned user, and
RabbitMQ refuses it everything the permission table (shared/permissions.py) does not grant.

Every other end-to-end test runs the register under these users too, so what the services,
the web shop and staff need does work. The providers' side is tests/e2e/test_provider_isolation.py.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from aiormq.exceptions import ChannelPreconditionFailed, ProbableAuthenticationError
from pydantic import BaseModel

from shared import topology
from shared.contracts.erasure import ErasureReported
from shared.contracts.ops import OpsReply
from shared.contracts.providers import IssueProviderCredentials, ListProviders
from shared.permissions import service_subscriptions
from tests.e2e.harness import (
    Attempt,
    Logins,
    QueueReader,
    Register,
    consume_one,
    declare,
    eventually,
    publish_to,
    refused,
    rekisteri,
    run_provision,
)
from tests.e2e.rabbitmq import Broker
from tests.e2e.support import add_provider, assert_refused, connected, queues_of

# Where only the register's services publish: a provider's queue (the disclosure service) and
# the dead letters (the broker, and the services).
SERVICES_ONLY = (("disclosures", "spa-oy"), ("dead-letter", "orders.order-placed"))


def owned_by(service: str) -> set[str]:
    """The queues a service consumes, and their dead-letter queues."""
    names = {subscription.queue_name for subscription in service_subscriptions(service)}
    if service == topology.UNROUTABLE_QUEUE_OWNER:
        names.add(topology.UNROUTABLE_QUEUE)
    return names | {topology.dead_letter_queue(name).name for name in names}


async def with_a_provider(staff_url: str) -> None:
    await asyncio.to_thread(add_provider, staff_url, "spa-oy", "Spa")


async def test_the_web_shop_publishes_to_webshop_and_may_read_declare_or_publish_nothing_else(
    register: Register, logins: Logins, staff_url: str, vhost_url: str, rabbitmq: Broker
) -> None:
    await with_a_provider(staff_url)
    queues = await queues_of(rabbitmq, vhost_url)
    assert {"disclosures.spa-oy", "ops.disclosure", "dead-letter.orders.order-placed"} <= queues
    async with connected(logins.webshop) as shop:
        assert not await refused(shop, publish_to("webshop", "order.placed"))
        await assert_refused(
            shop,
            consuming=queues,
            publishing=(
                *SERVICES_ONLY,
                ("ops", "disclosure"),
                ("webshop.unroutable", ""),
                ("", "orders.order-placed"),
            ),
            declaring="webshop.mine",
        )


async def test_a_service_may_consume_only_its_own_queues_and_only_disclosure_sends_to_providers(
    register: Register, logins: Logins, staff_url: str, vhost_url: str, rabbitmq: Broker
) -> None:
    await with_a_provider(staff_url)
    queues = await queues_of(rabbitmq, vhost_url)
    provider_queues = {"disclosures.spa-oy", "dead-letter.disclosures.spa-oy"}
    assert provider_queues <= queues
    for service, url in logins.services.items():
        own = owned_by(service)
        others = queues - own
        if service == "disclosure":
            # It declares provider queues, which RabbitMQ counts as read, and takes an erased
            # person's messages out of their dead letters.
            others -= provider_queues
        async with connected(url) as connection:
            for queue in sorted(others):
                assert await refused(connection, consume_one(queue)), (service, queue)
            for queue in sorted(own & queues):
                assert not await refused(connection, consume_one(queue)), (service, queue)
            sends_to_providers = not await refused(connection, publish_to("disclosures", "spa-oy"))
            assert sends_to_providers == (service == "disclosure"), service
            assert await refused(connection, publish_to("ops", "disclosure")), service
            assert await refused(connection, declare("orders.mine")), service


async def test_staff_send_commands_under_their_own_name_and_may_read_no_queue(
    register: Register, logins: Logins, staff_url: str, vhost_url: str, rabbitmq: Broker
) -> None:
    await with_a_provider(staff_url)
    queues = await queues_of(rabbitmq, vhost_url)
    async with connected(staff_url) as staff:
        await assert_refused(
            staff,
            consuming=queues,
            publishing=(*SERVICES_ONLY, ("webshop", "order.placed"), ("", "ops.disclosure")),
            declaring="ops.mine",
        )

        # Posing as another staff member: the broker closes the channel.
        channel = await staff.channel(publisher_confirms=True)
        ops = await channel.get_exchange("ops", ensure=False)
        posing = aio_pika.Message(
            ListProviders().model_dump_json().encode(),
            user_id=urlsplit(logins.staff["ben"]).username,
        )
        with pytest.raises(ChannelPreconditionFailed, match="user_id property set to"):
            await ops.publish(posing, routing_key="disclosure")

        # Sending no user id at all: the service answers that it refuses, and records it.
        channel = await staff.channel()
        answer = await ask(channel, ListProviders(), exchange="ops", routing_key="disclosure")
        assert "no AMQP user_id" in answer
    audited = rekisteri(staff_url, "audit", "list", "--json")
    assert audited.returncode == 0, audited.stderr
    [unsigned] = [entry for entry in json.loads(audited.stdout) if entry.get("actor") is None]
    assert (unsigned["command"], unsigned["outcome"]) == ("providers.list", "refused")


async def ask(
    channel: AbstractChannel,
    command: BaseModel,
    *,
    exchange: str,
    routing_key: str,
    user_id: str | None = None,
) -> str:
    """Send a command as `rekisteri` would, but by hand; the reply, as it came."""
    replies = await channel.get_queue(topology.DIRECT_REPLY_TO, ensure=False)
    answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def on_reply(message: AbstractIncomingMessage) -> None:
        answer.set_result(message.body)

    await replies.consume(on_reply, no_ack=True)
    to = (
        await channel.get_exchange(exchange, ensure=False) if exchange else channel.default_exchange
    )
    message = aio_pika.Message(
        command.model_dump_json().encode(), reply_to=topology.DIRECT_REPLY_TO, user_id=user_id
    )
    await to.publish(message, routing_key=routing_key)
    return (await asyncio.wait_for(answer, 10)).decode()


def user_of(url: str) -> str:
    return unquote(urlsplit(url).username or "")


async def test_a_services_login_cannot_command_not_even_straight_into_a_command_queue(
    register: Register,
    logins: Logins,
    staff_url: str,
    rabbitmq: Broker,
    provider_user_prefix: str,
) -> None:
    """The orders service's password, leaked, must not yield a provider's credentials: it may
    write to `amq.default` (its replies), and so reach `ops.disclosure` by name, but the
    disclosure service carries out commands only for staff users."""
    await with_a_provider(staff_url)
    orders = user_of(logins.services["orders"])
    async with connected(logins.services["orders"]) as connection:
        answer = await ask(
            await connection.channel(),
            IssueProviderCredentials(provider_id="spa-oy"),
            exchange="",
            routing_key="ops.disclosure",
            user_id=orders,
        )
    reply = OpsReply.model_validate_json(answer)
    assert not reply.ok and f"user {orders} is not a staff user" in (reply.error or "")
    users = {user["name"] for user in await rabbitmq.management("GET", "/api/users")}
    assert not any(user.startswith(provider_user_prefix) for user in users), "no user made"

    audited = rekisteri(staff_url, "audit", "list", "--actor", orders, "--json")
    assert audited.returncode == 0, audited.stderr
    [entry] = json.loads(audited.stdout)
    assert (entry["service"], entry["command"], entry["outcome"]) == (
        "disclosure",
        "providers.credentials",
        "refused",
    )


async def test_a_report_forged_by_another_services_login_completes_no_erasure(
    register: Register, logins: Logins, staff_url: str, vhost_url: str
) -> None:
    """The consent service's login reports "for the disclosure service" while that service is
    down: the report is dead-lettered, naming who sent it, and the erasure waits for the real
    one."""
    register.stop(["disclosure"])
    requested = rekisteri(
        staff_url, "erasure", "request", "--email", "forged.report@example.fi",
        "--reason", "subject-request",
    )  # fmt: skip
    assert requested.returncode == 0, requested.stderr
    request_id = requested.stdout.split()[2].rstrip(":")

    def status() -> dict[str, Any]:
        shown = rekisteri(staff_url, "erasure", "status", request_id, "--json")
        assert shown.returncode == 0, shown.stderr
        return dict(json.loads(shown.stdout))

    await eventually(status, lambda shown: shown["missing"] == ["disclosure"])
    consent = user_of(logins.services["consent"])
    forged = ErasureReported(
        request_id=request_id,
        service="disclosure",
        reported_at=datetime.now(UTC),
        erased={"forged": 99},
    )
    async with connected(logins.services["consent"]) as connection:
        channel = await connection.channel(publisher_confirms=True)
        events = await channel.get_exchange(topology.REGISTER_EVENTS_EXCHANGE, ensure=False)
        message = aio_pika.Message(
            forged.model_dump_json().encode(),
            content_type="application/json",
            user_id=consent,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await events.publish(message, routing_key=topology.ERASURE_REPORTED)
    async with QueueReader(vhost_url) as reader:
        [dead] = await reader.receive("dead-letter.erasure.erasure-reported", 1)
    headers = dead.headers or {}
    assert headers["x-original-user-id"] == consent
    reason = str(headers["x-rejection-reason"])
    assert f"sent by user {consent}, but its service is disclosure" in reason
    shown = status()
    assert (shown["status"], shown["missing"]) == ("in_progress", ["disclosure"])

    register.start(["disclosure"])
    done = await eventually(status, lambda shown: shown["status"] == "completed")
    assert "forged" not in done["receipt"]["services"]["disclosure"]["erased"]


async def test_on_the_internal_exchange_rabbitmq_lets_a_service_use_only_its_own_keys(
    register: Register, logins: Logins
) -> None:
    """Topic permissions: RabbitMQ refuses a service a routing key it does not publish, and a
    binding key it does not consume, on `register.events` and `webshop`."""
    events = topology.REGISTER_EVENTS_EXCHANGE
    async with connected(logins.services["consent"]) as consent:
        assert not await refused(consent, publish_to(events, topology.CONSENT_CHANGED))
        assert not await refused(consent, publish_to(events, topology.ERASURE_REPORTED))
        assert await refused(consent, publish_to(events, "erase.subject.orders"))
        assert await refused(consent, bind("consent.order-placed", events, "erase.subject.#"))
        assert await refused(consent, bind("consent.order-placed", "webshop", "erasure.requested"))
    async with connected(logins.services["erasure"]) as erasure:
        assert not await refused(erasure, publish_to(events, "erase.subject.orders"))
        assert await refused(erasure, publish_to(events, topology.ERASURE_REPORTED))
        assert await refused(erasure, publish_to(events, topology.CONSENT_CHANGED))


async def test_provisioning_again_keeps_passwords_and_rotates_only_when_asked(
    rabbitmq: Broker, vhost_url: str, user_prefix: str
) -> None:
    vhost = urlsplit(vhost_url).path[1:]

    def provision(*arguments: str, **passwords: str) -> dict[str, str]:
        done = run_provision(
            rabbitmq, vhost_url, user_prefix, "--staff", "anna", *arguments, passwords=passwords
        )
        assert done.returncode == 0, done.stderr
        # Standard output is exactly the generated passwords, as lines for .env.
        return dict(line.split("=", 1) for line in done.stdout.splitlines())

    orders_password = secrets.token_urlsafe(16)
    first = provision(RABBITMQ_PASSWORD_ORDERS=orders_password)
    assert set(first) == {
        "RABBITMQ_PASSWORD_CONSENT",
        "RABBITMQ_PASSWORD_DISCLOSURE",
        "RABBITMQ_PASSWORD_ERASURE",
        "RABBITMQ_PASSWORD_WEBSHOP",
        "RABBITMQ_PASSWORD_STAFF_ANNA",
    }
    anna = rabbitmq.url_for(
        vhost, f"{user_prefix}staff-anna", first["RABBITMQ_PASSWORD_STAFF_ANNA"]
    )
    shop = rabbitmq.url_for(vhost, f"{user_prefix}webshop", first["RABBITMQ_PASSWORD_WEBSHOP"])
    orders = rabbitmq.url_for(vhost, f"{user_prefix}orders", orders_password)

    assert provision() == {}, "nothing is generated twice"
    for url in (anna, shop, orders):
        async with connected(url):
            pass

    rotated = provision("--rotate", "staff-anna")
    assert set(rotated) == {"RABBITMQ_PASSWORD_STAFF_ANNA"}
    with pytest.raises(ProbableAuthenticationError):
        await aio_pika.connect(anna)
    new_anna = rabbitmq.url_for(vhost, f"{user_prefix}staff-anna", rotated.popitem()[1])
    for url in (new_anna, shop):
        async with connected(url):
            pass

    clash = run_provision(
        rabbitmq,
        vhost_url,
        user_prefix,
        "--rotate",
        "orders",
        passwords={"RABBITMQ_PASSWORD_ORDERS": orders_password},
    )
    assert clash.returncode == 2 and "RABBITMQ_PASSWORD_ORDERS" in clash.stderr


# --- what RabbitMQ checks, as shared/permissions.py and docs/security.md say --------------------


class Users:
    """Users with hand-made permissions in the test's vhost (deleted with the test's prefix)."""

    def __init__(self, rabbitmq: Broker, vhost: str, prefix: str) -> None:
        self._rabbitmq = rabbitmq
        self._vhost = vhost
        self._prefix = prefix

    async def url(
        self, name: str, configure: str = "^$", write: str = "^$", read: str = "^$"
    ) -> str:
        user = self._prefix + name
        password = secrets.token_urlsafe(16)
        await self._rabbitmq.management(
            "PUT", f"/api/users/{quote(user, safe='')}", {"password": password, "tags": ""}
        )
        await self._rabbitmq.management(
            "PUT",
            f"/api/permissions/{quote(self._vhost, safe='')}/{quote(user, safe='')}",
            {"configure": configure, "write": write, "read": read},
        )
        return self._rabbitmq.url_for(self._vhost, user, password)


def declare_exchange(name: str, **arguments: str) -> Attempt:
    async def attempt(channel: AbstractChannel) -> object:
        return await channel.declare_exchange(
            name, aio_pika.ExchangeType.TOPIC, durable=True, arguments=arguments or None
        )

    return attempt


def declare_dead_lettering(queue_name: str) -> Attempt:
    async def attempt(channel: AbstractChannel) -> object:
        arguments = {"x-queue-type": "quorum", "x-dead-letter-exchange": "dlx"}
        return await channel.declare_queue(queue_name, durable=True, arguments=arguments)

    return attempt


def bind(queue_name: str, exchange_name: str, routing_key: str = "key") -> Attempt:
    async def attempt(channel: AbstractChannel) -> object:
        queue = await channel.get_queue(queue_name, ensure=False)
        return await queue.bind(exchange_name, routing_key=routing_key)

    return attempt


async def ignore(message: AbstractIncomingMessage) -> None:
    pass


def subscribe(queue_name: str) -> Attempt:
    async def attempt(channel: AbstractChannel) -> object:
        queue = await channel.get_queue(queue_name, ensure=False)
        return await queue.cancel(await queue.consume(ignore))

    return attempt


def purge(queue_name: str) -> Attempt:
    async def attempt(channel: AbstractChannel) -> object:
        queue = await channel.get_queue(queue_name, ensure=False)
        return await queue.purge()

    return attempt


def passive(queue_name: str) -> Attempt:
    async def attempt(channel: AbstractChannel) -> object:
        return await channel.declare_queue(queue_name, passive=True)

    return attempt


async def test_rabbitmq_checks_rights_as_the_permission_table_assumes(
    rabbitmq: Broker, vhost_url: str, user_prefix: str
) -> None:
    users = Users(rabbitmq, urlsplit(vhost_url).path[1:], user_prefix)
    async with connected(vhost_url) as admin:
        channel = await admin.channel()
        for name in ("ex", "ae", "dlx"):
            await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
        for name in ("q", "other"):
            await channel.declare_queue(name, durable=True)

    # Declaring, even what exists, takes configure; a passive declare takes nothing.
    async with connected(await users.url("configure", configure="^ex$")) as party:
        assert not await refused(party, declare_exchange("ex"))
        assert await refused(party, declare("q"))
        assert not await refused(party, passive("other"))
    # An exchange created with an alternate exchange: read on it, write on the alternate.
    url = await users.url("alternate", configure="^ex2$", write="^ae$")
    async with connected(url) as party:
        assert await refused(party, declare_exchange("ex2", **{"alternate-exchange": "ae"}))
    url = await users.url("alternate2", configure="^ex2$", write="^ae$", read="^ex2$")
    async with connected(url) as party:
        assert not await refused(party, declare_exchange("ex2", **{"alternate-exchange": "ae"}))
    # A queue created with a dead-letter exchange: read on the queue, write on that exchange.
    async with connected(await users.url("dead", configure="^dq$", write="^dlx$")) as party:
        assert await refused(party, declare_dead_lettering("dq"))
    url = await users.url("dead2", configure="^dq$", write="^dlx$", read="^dq$")
    async with connected(url) as party:
        assert not await refused(party, declare_dead_lettering("dq"))
    # Binding: write on the queue and read on the exchange, both.
    async with connected(await users.url("binder", write="^q$", read="^ex$")) as party:
        assert not await refused(party, bind("q", "ex"))
    async with connected(await users.url("binder2", read="^ex$")) as party:
        assert await refused(party, bind("q", "ex"))
    async with connected(await users.url("binder3", write="^q$")) as party:
        assert await refused(party, bind("q", "ex"))
    # Publishing to the default exchange is writing to `amq.default`, and reaches any queue.
    async with connected(await users.url("sender", write="^ex$")) as party:
        assert not await refused(party, publish_to("ex", "key"))
        assert await refused(party, publish_to("", "q"))
    async with connected(await users.url("default", write="^amq\\.default$")) as party:
        assert not await refused(party, publish_to("", "q"))
        assert not await refused(party, publish_to("", "other"))
    # Reading a queue: consume, basic.get and purge alike.
    async with connected(await users.url("reader", read="^q$")) as party:
        for attempt in (consume_one, subscribe, purge):
            assert not await refused(party, attempt("q")), attempt
            assert await refused(party, attempt("other")), attempt
    # Direct reply-to needs no read right: staff get their replies reading no queue.
    async with connected(await users.url("staff", write="^ex$")) as party:
        channel = await party.channel()
        replies = await channel.get_queue(topology.DIRECT_REPLY_TO, ensure=False)
        await replies.consume(ignore, no_ack=True)
        await channel.close()
