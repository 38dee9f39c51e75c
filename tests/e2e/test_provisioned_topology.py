"""The register's exchanges, queues and bindings are declared once, by the administrator's
provisioning step (`rekisteri rabbitmq provision`); a service logged in as its own user only
finds them, and cannot bind a queue of its own to another's messages. And no long-running
service may run as RabbitMQ's administrator in production.

Every other end-to-end test runs the services this way too, so what provisioning declares is
proven sufficient there; here are the refusals.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import quote, urlsplit

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel

from shared import topology
from shared.permissions import SERVICE_ROLES
from tests.e2e.harness import Attempt, Logins, Register, refused, rekisteri, run_provision
from tests.e2e.rabbitmq import Broker
from tests.e2e.support import connected

PRODUCTION = {"REGISTER_ENV": "production", "IDENTITY_HASH_KEY": secrets.token_urlsafe(32)}


def binding(queue_name: str, exchange_name: str, routing_key: str) -> Attempt:
    async def attempt(channel: AbstractChannel) -> object:
        queue = await channel.get_queue(queue_name, ensure=False)
        return await queue.bind(exchange_name, routing_key=routing_key)

    return attempt


def declaring_exchange(name: str) -> Attempt:
    async def attempt(channel: AbstractChannel) -> object:
        return await channel.declare_exchange(name, aio_pika.ExchangeType.FANOUT, durable=True)

    return attempt


# What a stolen login would bind its own queue to, to read what is meant for someone else.
ELSEWHERE = (
    (topology.OPS_EXCHANGE, "disclosure"),  # staff's commands to the disclosure service
    (topology.OPS_EXCHANGE, "orders"),
    (topology.WEBSHOP_EXCHANGE, "#"),  # every web shop event
    (topology.WEBSHOP_EXCHANGE, topology.CONSENT_UPDATED),
    (topology.DEAD_LETTER_EXCHANGE, "consent.consent-updated"),  # another service's dead letters
    (topology.DEAD_LETTER_EXCHANGE, "erasure.erasure-requested"),
    (topology.REGISTER_EVENTS_EXCHANGE, "#"),
    (topology.DISCLOSURES_EXCHANGE, "spa-oy"),  # a provider's disclosures
)


async def test_a_services_login_cannot_bind_a_queue_of_its_own_to_a_shared_exchange(
    register: Register, logins: Logins, staff_url: str
) -> None:
    added = rekisteri(staff_url, "providers", "add", "spa-oy", "--name", "Spa", "--country", "FI")
    assert added.returncode == 0, added.stderr
    for service, url in logins.services.items():
        own = SERVICE_ROLES[service].consumes[0].queue_name
        async with connected(url) as connection:
            for exchange, key in ELSEWHERE:
                if (service, exchange) == ("disclosure", topology.DISCLOSURES_EXCHANGE):
                    continue  # it binds providers' queues there (below)
                # ACCESS_REFUSED, not NOT_FOUND: the queue and the exchange exist.
                assert await refused(connection, binding(own, exchange, key)), (service, exchange)
            assert await refused(connection, declaring_exchange(f"{service}.mine")), service

    # The disclosure service binds a provider's queue to `disclosures` (when the provider is
    # registered), and nothing to anything else: not even that queue's dead letters.
    async with connected(logins.services["disclosure"]) as connection:
        provider_queue = topology.provider_queue_name("spa-oy")
        assert not await refused(connection, binding(provider_queue, "disclosures", "spa-oy"))
        for exchange, key in ELSEWHERE:
            if exchange != topology.DISCLOSURES_EXCHANGE:
                assert await refused(connection, binding(provider_queue, exchange, key)), exchange
        dead_letters = topology.dead_letter_queue(provider_queue).name
        assert await refused(
            connection, binding(dead_letters, "dead-letter", "orders.order-placed")
        )


async def test_a_service_finds_its_queues_as_provisioning_declared_them_or_does_not_start(
    logins: Logins, rabbitmq: Broker, vhost_url: str, user_prefix: str, tmp_path: Path
) -> None:
    vhost = quote(urlsplit(vhost_url).path[1:], safe="")
    missing = topology.runtime_subscription("consent").queue_name
    await rabbitmq.management("DELETE", f"/api/queues/{vhost}/{quote(missing, safe='')}")
    consent = Register(logins.services, tmp_path / "data")
    with pytest.raises(AssertionError, match="exited early"):
        consent.start(["consent"])
    log = consent.logs()
    assert f"queue {missing} is missing" in log and "rekisteri rabbitmq provision" in log

    # Its own user could not have declared it; provisioning again does, and it starts.
    provisioned = run_provision(rabbitmq, vhost_url, user_prefix, "--staff", "anna")
    assert provisioned.returncode == 0, provisioned.stderr
    try:
        consent.start(["consent"])
    finally:
        consent.stop()


async def administrator_url(rabbitmq: Broker, vhost_url: str, user_prefix: str) -> str:
    """A RabbitMQ administrator of the test's own (deleted with the test's prefix)."""
    user, password = f"{user_prefix}administrator", secrets.token_urlsafe(16)
    vhost = urlsplit(vhost_url).path[1:]
    await rabbitmq.management(
        "PUT", f"/api/users/{quote(user, safe='')}", {"password": password, "tags": "administrator"}
    )
    await rabbitmq.management(
        "PUT",
        f"/api/permissions/{quote(vhost, safe='')}/{quote(user, safe='')}",
        {"configure": ".*", "write": ".*", "read": ".*"},
    )
    return rabbitmq.url_for(vhost, user, password)


async def test_production_refuses_to_run_the_disclosure_service_as_an_administrator(
    logins: Logins, rabbitmq: Broker, vhost_url: str, user_prefix: str, tmp_path: Path
) -> None:
    management = {"RABBITMQ_MANAGEMENT_URL": rabbitmq.management_url}
    as_administrator = Register(
        {"disclosure": await administrator_url(rabbitmq, vhost_url, user_prefix)},
        tmp_path / "administrator",
        extra_env=PRODUCTION | management,
    )
    with pytest.raises(AssertionError, match="exited early"):
        as_administrator.start(["disclosure"])
    assert "RABBITMQ_URL logs in as an administrator" in as_administrator.logs()

    holding_one = Register(
        logins.services,
        tmp_path / "holding",
        extra_env=PRODUCTION
        | management
        | {"RABBITMQ_MANAGEMENT_USER": "someone", "RABBITMQ_MANAGEMENT_PASSWORD": "fake-password"},
    )
    with pytest.raises(AssertionError, match="exited early"):
        holding_one.start(["disclosure"])
    assert "RABBITMQ_MANAGEMENT_USER and RABBITMQ_MANAGEMENT_PASSWORD must not be set" in (
        holding_one.logs()
    )
    assert "fake-password" not in holding_one.logs()

    # Its own provisioned user, with nothing more: it starts, and is ready.
    own = Register(logins.services, tmp_path / "own", extra_env=PRODUCTION | management)
    try:
        own.start(["disclosure"])
    finally:
        assert own.stop(["disclosure"]) == {"disclosure": 0}
