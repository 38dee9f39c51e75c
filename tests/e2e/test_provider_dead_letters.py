"""A disclosure a provider rejected waits in `dead-letter.disclosures.<provider>`: staff see it
with `rekisteri status` and `dlq`, can replay it to that provider, and the person's erasure
takes it out. Also the turns the dead-letter queues' browsing takes, against the real broker:
no listing or replay during an erasure's removal hides a message from it or puts one back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage

from shared import topology
from shared.dead_letters import QueueInspector, mentions_subject
from tests.e2e.harness import HASH, QueueReader, Register, WebShop, eventually, rekisteri
from tests.e2e.support import add_provider, erasure_receipt, listed, run, until
from tests.factories import full_person, item, order_placed, person

PROVIDER = "spa-oy"
PROVIDER_QUEUE = topology.provider_queue_name(PROVIDER)
DEAD_LETTERS = topology.DEAD_LETTER_QUEUE_PREFIX + PROVIDER_QUEUE
AINO = "aino.rejected@example.fi"


def provider_dead_letters(staff_url: str) -> dict[str, Any]:
    [row] = [row for row in listed(staff_url, "status") if row["queue"] == DEAD_LETTERS]
    return row


async def depth_becomes(reader: QueueReader, queue: str, messages: int) -> None:
    """Wait until the queue holds exactly `messages`: a quorum queue counts a message until the
    broker has applied its acknowledgement or dead-lettering, a moment after it was sent."""

    async def holds_them() -> bool:
        return await reader.depth(queue) == messages

    await until(holds_them)


async def take_all(url: str, queue_name: str) -> list[AbstractIncomingMessage]:
    """Everything the queue holds now, taken out."""
    taken = []
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(queue_name, ensure=False)
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            taken.append(message)
    return taken


async def reject(provider_url: str, count: int) -> list[str]:
    """The provider takes `count` messages from its queue and rejects each (basic.reject without
    requeue, and basic.nack); returns their message ids."""
    rejected: list[str] = []
    connection = await aio_pika.connect(provider_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(PROVIDER_QUEUE, ensure=False)
        async with asyncio.timeout(20), queue.iterator() as messages:
            async for message in messages:
                if len(rejected) % 2:
                    await message.nack(requeue=False)
                else:
                    await message.reject(requeue=False)
                rejected.append(message.message_id or "")
                if len(rejected) == count:
                    break
    return rejected


async def test_a_rejected_disclosure_is_listed_replayable_and_gone_with_the_persons_erasure(
    register: Register, vhost_url: str, staff_url: str, webshop_url: str
) -> None:
    add_provider(staff_url, PROVIDER)
    provider_url = run(staff_url, "providers", "credentials", PROVIDER).strip()

    # Aino's order names her in the spelling she gave at checkout; Eino's names only him.
    hers = order_placed(
        buyer=full_person("Aino", "Virtanen", "Aino.Rejected@Example.FI"),
        recipient=person("Eino", "Korhonen", "eino.kept@example.fi"),
        items=[item(PROVIDER, "p-spa")],
    )
    gift_to_her = order_placed(
        buyer=full_person("Eino", "Korhonen", "eino.kept@example.fi"),
        recipient=person("Aino", "Virtanen", AINO),
        items=[item(PROVIDER, "p-gift")],
    )
    his = order_placed(
        buyer=full_person("Eino", "Korhonen", "eino.kept@example.fi"),
        recipient=person("Eino", "Korhonen", None),
        items=[item(PROVIDER, "p-his")],
    )
    async with WebShop(webshop_url) as shop:
        for order in (hers, gift_to_her, his):
            await shop.publish("order.placed", order, message_id=order["event_id"])
    assert len(await reject(provider_url, 3)) == 3

    status = await eventually(
        lambda: provider_dead_letters(staff_url), lambda row: row["messages"] == 3
    )
    assert (status["service"], status["kind"], status["attention"]) == (
        "disclosure",
        "dead-letter",
        "DEAD LETTERS",
    )
    rows = listed(staff_url, "dlq", "list", "--queue", PROVIDER_QUEUE)
    assert len(rows) == 3
    assert {(row["dead_letter_queue"], row["source_queue"], row["reason"]) for row in rows} == {
        (DEAD_LETTERS, PROVIDER_QUEUE, "rejected")
    }
    assert {row["routing_key"] for row in rows} == {PROVIDER}
    assert "aino" not in json.dumps(rows).lower()  # previews are masked
    assert len([r for r in listed(staff_url, "dlq", "list") if r["service"] == "disclosure"]) == 3

    _, receipt = erasure_receipt(staff_url, "--email", AINO)
    assert receipt["services"]["disclosure"]["erased"]["dead letters"] == 2
    assert receipt["providers_notified"] == [PROVIDER]

    [left] = listed(staff_url, "dlq", "list", "--queue", DEAD_LETTERS)
    async with QueueReader(vhost_url) as reader:
        [notice] = await reader.receive(PROVIDER_QUEUE, 1)
        assert json.loads(notice.body)["type"] == "erasure_notice"
        assert provider_dead_letters(staff_url)["messages"] == 1

        # A message a service put into the provider's dead letters itself (any service may
        # publish to the dead-letter exchange) is never replayed to the provider.
        dead_letter_exchange = await reader.channel.get_exchange(  # type: ignore[union-attr]
            topology.DEAD_LETTER_EXCHANGE, ensure=False
        )
        await dead_letter_exchange.publish(
            aio_pika.Message(b'{"forged": true}', message_id="forged"), routing_key=PROVIDER_QUEUE
        )
        await eventually(lambda: provider_dead_letters(staff_url), lambda row: row["messages"] == 2)
        replayed = rekisteri(staff_url, "dlq", "replay", "--all", "--queue", PROVIDER_QUEUE)
        assert replayed.returncode == 0, replayed.stderr
        assert "replayed 1 dead letter(s)" in replayed.stdout
    [again] = await take_all(vhost_url, PROVIDER_QUEUE)
    assert again.message_id == left["message_id"]
    assert json.loads(again.body)["order_id"] == his["order_id"]
    [forged] = listed(staff_url, "dlq", "list", "--queue", DEAD_LETTERS)
    assert forged["message_id"] == "forged"


# --- taking turns, in one process against the real broker -------------------------------------


@pytest.fixture
async def provider_dead_letters_queue(vhost_url: str) -> AsyncIterator[QueueInspector]:
    """A provider's queue and its dead letters, and an inspector answering for them as the
    disclosure service's does."""
    connection = await aio_pika.connect(vhost_url)
    async with connection:
        channel = await connection.channel()
        dead_letters = await channel.declare_exchange(
            topology.DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True
        )
        queue = topology.provider_queue(PROVIDER)
        await channel.declare_queue(queue.name, durable=True, arguments=queue.arguments)
        dead_letter_queue = await channel.declare_queue(
            DEAD_LETTERS,
            durable=True,
            arguments=topology.dead_letter_queue(PROVIDER_QUEUE).arguments,
        )
        await dead_letter_queue.bind(dead_letters, routing_key=PROVIDER_QUEUE)

    async def provided() -> list[str]:
        return [PROVIDER_QUEUE]

    yield QueueInspector(vhost_url, work_queues=list, command_queues=list, provided_queues=provided)


async def rejected_by_the_provider(vhost_url: str, orders: list[dict[str, Any]]) -> None:
    """Each order's disclosure in the provider's queue, rejected by the broker's own hand."""
    connection = await aio_pika.connect(vhost_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        for order in orders:
            message = aio_pika.Message(json.dumps(order).encode(), message_id=order["order_id"])
            await channel.default_exchange.publish(message, routing_key=PROVIDER_QUEUE)
        queue = await channel.get_queue(PROVIDER_QUEUE, ensure=False)
        for _ in orders:
            taken = await queue.get(no_ack=False)
            assert taken is not None
            await taken.reject(requeue=False)
    async with QueueReader(vhost_url) as reader:
        await depth_becomes(reader, DEAD_LETTERS, len(orders))


def about(email: str, count: int) -> list[dict[str, Any]]:
    return [
        order_placed(buyer=full_person("A", "B", email), items=[item(PROVIDER)])
        for _ in range(count)
    ]


def hers(body: bytes) -> bool:
    return mentions_subject(body, HASH(AINO), HASH)


async def test_a_listing_started_first_is_done_before_the_removal_looks_at_any_dead_letter(
    provider_dead_letters_queue: QueueInspector, vhost_url: str
) -> None:
    inspector = provider_dead_letters_queue
    await rejected_by_the_provider(vhost_url, about(AINO, 30) + about("eino@example.fi", 30))
    looked_while_listing: list[bool] = []

    def matches(body: bytes) -> bool:
        looked_while_listing.append(not listing.done())
        return hers(body)

    listing = asyncio.create_task(inspector.list(None, 10_000))
    removal = asyncio.create_task(inspector.remove(matches))
    listed_letters, removed = await asyncio.gather(listing, removal)
    assert len(listed_letters) == 60
    assert removed == 30, "a listing held some of her dead letters out of the removal's sight"
    assert looked_while_listing and not any(looked_while_listing)
    assert len(await inspector.list(None, 10_000)) == 30


async def test_a_replay_during_a_removal_puts_none_of_the_persons_messages_back(
    provider_dead_letters_queue: QueueInspector, vhost_url: str
) -> None:
    inspector = provider_dead_letters_queue
    await rejected_by_the_provider(vhost_url, about(AINO, 30) + about("eino@example.fi", 30))

    removal = asyncio.create_task(inspector.remove(hers))
    replay = asyncio.create_task(inspector.replay(None, PROVIDER_QUEUE))
    removed, replayed = await asyncio.gather(removal, replay)
    assert (removed, len(replayed)) == (30, 30)
    back = await take_all(vhost_url, PROVIDER_QUEUE)
    assert len(back) == 30
    assert not any(hers(message.body) for message in back)
    assert await take_all(vhost_url, DEAD_LETTERS) == []
