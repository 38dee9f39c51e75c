"""Each provider reaches its own queue and nothing else, with credentials made by the real
`rekisteri providers credentials` against the real broker.

Also the other half of "no mass disclosure": whatever the orders, a provider's queue only ever
holds disclosures of orders that contain its items, and only those items.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote, urlsplit

import aio_pika
import pytest
from aiormq.exceptions import ProbableAuthenticationError

from tests.e2e.harness import (
    QueueReader,
    Register,
    WebShop,
    rekisteri,
)
from tests.e2e.rabbitmq import Broker
from tests.e2e.support import add_provider, assert_refused, queues_of, until
from tests.factories import item, order_placed


def issue_credentials(staff_url: str, provider_id: str) -> str:
    issued = rekisteri(staff_url, "providers", "credentials", provider_id)
    assert issued.returncode == 0, issued.stderr
    assert "shown only this once" in issued.stderr
    return issued.stdout.strip()


async def known_to_the_management_api(rabbitmq: Broker, user: str, within: float = 30) -> None:
    """Wait until the management API lists a connection of `user` (its statistics lag)."""

    async def listed() -> bool:
        return bool(await rabbitmq.management("GET", f"/api/connections/username/{quote(user)}"))

    await until(listed, within, every=0.5)


async def test_a_provider_reads_its_own_queue_and_is_refused_everything_else(
    register: Register,
    vhost_url: str,
    staff_url: str,
    webshop_url: str,
    rabbitmq: Broker,
    provider_user_prefix: str,
) -> None:
    for provider_id, country in (("spa-oy", "FI"), ("kart-oy", "SE")):
        add_provider(staff_url, provider_id, provider_id, country)
    refused_unknown = rekisteri(staff_url, "providers", "credentials", "nobody-oy")
    assert refused_unknown.returncode == 1
    assert "provider nobody-oy is not registered" in refused_unknown.stderr

    spa_url = issue_credentials(staff_url, "spa-oy")
    kart_url = issue_credentials(staff_url, "kart-oy")
    vhost = urlsplit(vhost_url).path[1:]
    parts = urlsplit(spa_url)
    assert parts.username == f"{provider_user_prefix}spa-oy"
    assert (parts.hostname, parts.port, parts.path) == (
        urlsplit(vhost_url).hostname,
        urlsplit(vhost_url).port or 5672,
        f"/{vhost}",
    )

    both = order_placed(items=[item("spa-oy", "p-1"), item("kart-oy", "p-2")])
    kart_only = order_placed(items=[item("kart-oy", "p-3")])
    spa_only = order_placed(items=[item("spa-oy", "p-4"), item("spa-oy", "p-5")])
    async with WebShop(webshop_url) as shop:
        for order in (both, kart_only, spa_only):
            await shop.publish("order.placed", order, message_id=order["event_id"])

    # Each provider with its own credentials, as the README tells them to connect.
    expected = {
        "spa-oy": {both["order_id"]: ["p-1"], spa_only["order_id"]: ["p-4", "p-5"]},
        "kart-oy": {both["order_id"]: ["p-2"], kart_only["order_id"]: ["p-3"]},
    }
    for provider_id, url in (("spa-oy", spa_url), ("kart-oy", kart_url)):
        async with QueueReader(url) as provider:
            messages = await provider.receive(f"disclosures.{provider_id}", 2)
            received = {
                body["order_id"]: [i["product_id"] for i in body["items"]]
                for body in (json.loads(m.body) for m in messages)
            }
            assert received == expected[provider_id]

    others = sorted((await queues_of(rabbitmq, vhost_url)) - {"disclosures.spa-oy"})
    assert {"disclosures.kart-oy", "disclosure.order-placed", "ops.disclosure"} <= set(others)
    assert "dead-letter.disclosures.spa-oy" in others

    connection = await aio_pika.connect(spa_url)
    try:
        await assert_refused(
            connection,
            consuming=others,
            # Not even to its own queue, nor straight to it through the default exchange.
            publishing=[("disclosures", provider_id) for provider_id in expected]
            + [("webshop", "order.placed"), ("ops", "disclosure"), ("", "disclosures.spa-oy")],
            declaring="disclosures.spa-oy",
        )

        # Rotating closes what the old password opened and makes it useless. The management
        # API closes the connections it knows of; it learns of a new one within seconds.
        closed: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        connection.close_callbacks.add(lambda _, error: closed.set_result(error))
        await known_to_the_management_api(rabbitmq, parts.username or "")
        rotated_url = issue_credentials(staff_url, "spa-oy")
        assert "CONNECTION_FORCED" in str(await asyncio.wait_for(closed, 10))
    finally:
        await connection.close()
    with pytest.raises(ProbableAuthenticationError):
        await aio_pika.connect(spa_url)
    async with QueueReader(rotated_url) as provider:
        assert await provider.depth("disclosures.spa-oy") == 0

    # Nothing else ever reached either queue: with everything stopped, both are empty.
    register.stop()
    async with QueueReader(vhost_url) as reader:
        for provider_id in expected:
            assert await reader.depth(f"disclosures.{provider_id}") == 0
    logs = register.logs()
    for url in (spa_url, kart_url, rotated_url):
        password = urlsplit(url).password
        assert password and password not in logs


async def test_a_replayed_dead_letter_goes_back_where_it_failed_never_to_a_provider(
    register: Register, vhost_url: str, staff_url: str
) -> None:
    add_provider(staff_url, "spa-oy", "Spa")
    # A dead letter whose headers claim it came from a provider's queue: headers are whatever
    # the original sender put there.
    async with QueueReader(vhost_url) as party:
        assert party.channel is not None
        dead_letters = await party.channel.get_exchange("dead-letter", ensure=False)
        forged = aio_pika.Message(
            b'{"forged": true}',
            message_id="forged",
            headers={"x-original-queue": "disclosures.spa-oy"},
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await dead_letters.publish(forged, routing_key="disclosure.order-placed")

        replayed = rekisteri(staff_url, "dlq", "replay", "--all")
        assert replayed.returncode == 0, replayed.stderr
        assert "replayed 1 dead letter(s)" in replayed.stdout
        assert await party.depth("disclosures.spa-oy") == 0
        # It went through the disclosure service again, which rejected it again.
        [again] = await party.receive("dead-letter.disclosure.order-placed", 1)
        assert again.message_id == "forged"
