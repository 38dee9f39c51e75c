"""What a service tells operators about its own queues, and how it repairs its dead letters.

Every service answers `status`, `dlq.list`, `dlq.replay` and `dlq.purge` for the queues it
owns (wired by shared/runtime.py). Dead letters are read with `basic.get` on a channel of
their own and left unacknowledged, so closing the channel puts every one not replayed back.
A listing shows why, from where and when, and a preview whose personal data is masked. An
erasure takes the person's dead letters out (`remove`, `mentions_subject`).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import aio_pika
import orjson
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from shared import topology
from shared.contracts.runtime import DeadLetter, QueueStatus
from shared.identity import SubjectHasher
from shared.messaging import (
    ORIGINAL_QUEUE_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
    REASON_HEADER,
    REJECTED_AT_HEADER,
    REJECTED_BY_HEADER,
)

# Values of these fields are ids and amounts, not personal data: a preview may show them.
UNMASKED_FIELDS = frozenset(
    {
        "event_id",
        "order_id",
        "provider_id",
        "product_id",
        "disclosure_id",
        "request_id",
        "quantity",
        "unit_price_cents",
        "currency",
        "occurred_at",
        "text_version",
        "source",
        "type",
        "command",
        "reason",
    }
)
PREVIEW_LENGTH = 1000
MASK = "***"
# Headers the register adds when it dead-letters, or the broker adds; not sent on a replay.
_REJECTION_HEADERS = (
    "x-death",
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
)


def mask(value: Any, field: str = "") -> Any:
    """Keep the shape and the ids, hide every other value."""
    if isinstance(value, dict):
        return {key: mask(item, key) for key, item in value.items()}
    if isinstance(value, list):
        return [mask(item, field) for item in value]
    if field in UNMASKED_FIELDS or value is None or isinstance(value, bool):
        return value
    return MASK


def masked_preview(body: bytes) -> str:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return f"<{len(body)} bytes, not JSON>"
    preview = orjson.dumps(mask(data)).decode()
    return preview if len(preview) <= PREVIEW_LENGTH else preview[: PREVIEW_LENGTH - 3] + "..."


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def mentions_subject(body: bytes, subject: str, hasher: SubjectHasher) -> bool:
    """Whether a JSON message names the person: an email of theirs (compared by keyed hash, so
    as normalised emails), or their subject hash itself. A body that is not JSON names nobody
    the register can tell."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return any(
        text == subject or ("@" in text and hasher(text) == subject) for text in _strings(data)
    )


def _first_death(message: AbstractIncomingMessage) -> dict[str, Any]:
    deaths = (message.headers or {}).get("x-death") or []
    return dict(deaths[0]) if deaths and isinstance(deaths[0], dict) else {}


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, datetime):
        return value.isoformat()
    return "" if value is None else str(value)


def describe(message: AbstractIncomingMessage, dead_letter_queue: str) -> DeadLetter:
    """Who dead-lettered it and why: the register's own headers, else the broker's x-death."""
    headers = message.headers or {}
    death = _first_death(message)
    routing_keys = death.get("routing-keys") or [message.routing_key or ""]
    rejected_at = _text(headers.get(REJECTED_AT_HEADER) or death.get("time"))
    identity = f"{message.message_id}\x1f{rejected_at}\x1f".encode() + message.body
    return DeadLetter(
        id=hashlib.sha256(identity).hexdigest()[:12],
        dead_letter_queue=dead_letter_queue,
        source_queue=_text(headers.get(ORIGINAL_QUEUE_HEADER) or death.get("queue")),
        reason=_text(headers.get(REASON_HEADER) or death.get("reason") or "unroutable"),
        routing_key=_text(headers.get(ORIGINAL_ROUTING_KEY_HEADER) or routing_keys[0]),
        rejected_at=rejected_at,
        rejected_by=_text(headers.get(REJECTED_BY_HEADER) or "rabbitmq"),
        message_id=message.message_id,
        size=len(message.body),
        preview=masked_preview(message.body),
    )


class QueueInspector:
    """One service's view of its queues, over a connection of its own."""

    # A removal holds every dead letter it has looked at until it is done; a second one at the
    # same time would not see them, and miss the messages it is looking for.
    _removal = asyncio.Lock()

    def __init__(
        self,
        rabbitmq_url: str,
        work_queues: Callable[[], Iterable[str]],
        command_queues: Callable[[], Iterable[str]],
        extra_dead_letter_queues: Iterable[str] = (),
    ) -> None:
        self._url = rabbitmq_url
        self._work_queues = work_queues
        self._command_queues = command_queues
        self._extra_dead_letter_queues = tuple(extra_dead_letter_queues)

    def dead_letter_queues(self, only: str | None = None) -> list[str]:
        names = [topology.DEAD_LETTER_QUEUE_PREFIX + q for q in self._work_queues()]
        names += self._extra_dead_letter_queues
        if only is None:
            return names
        return [n for n in names if only in (n, n.removeprefix(topology.DEAD_LETTER_QUEUE_PREFIX))]

    @asynccontextmanager
    async def _channel(self) -> AsyncIterator[AbstractChannel]:
        connection = await aio_pika.connect(self._url)
        async with connection:
            yield await connection.channel(publisher_confirms=True, on_return_raises=True)

    async def status(self) -> list[QueueStatus]:
        kinds = (
            [(q, "work") for q in self._work_queues()]
            + [(q, "dead-letter") for q in self.dead_letter_queues()]
            + [(q, "commands") for q in self._command_queues()]
        )
        statuses = []
        async with self._channel() as channel:
            for name, kind in kinds:
                declared = await channel.declare_queue(name, passive=True)
                result = declared.declaration_result
                statuses.append(
                    QueueStatus(
                        queue=name,
                        kind=kind,  # type: ignore[arg-type]
                        messages=result.message_count or 0,
                        consumers=result.consumer_count or 0,
                    )
                )
        return statuses

    async def list(self, only: str | None, limit: int) -> list[DeadLetter]:
        found: list[DeadLetter] = []
        async with self._channel() as channel:
            for name in self.dead_letter_queues(only):
                async for message in _browse(channel, name, limit - len(found)):
                    found.append(describe(message, name))
        return found

    async def replay(self, ids: set[str] | None, only: str | None) -> list[str]:
        """Republish to the source queue and remove from the dead-letter queue; returns ids.

        Only what the queue held when the replay began: a replayed message that fails again
        comes back behind those, and is not replayed a second time.
        """
        replayed = []
        async with self._channel() as channel:
            for name in self.dead_letter_queues(only):
                held = await channel.declare_queue(name, passive=True)
                waiting = held.declaration_result.message_count or 0
                async for message in _browse(channel, name, limit=waiting):
                    letter = describe(message, name)
                    if ids is not None and letter.id not in ids:
                        continue
                    await _send_back(channel, message, letter, self._source_of(name))
                    await message.ack()
                    replayed.append(letter.id)
        return replayed

    def _source_of(self, dead_letter_queue: str) -> str | None:
        """The work queue whose failures `dead_letter_queue` holds; None for the unroutable one.

        Read from the queue's name, never from the message's headers, which its sender chose:
        a replay goes back where the message failed, and can never reach a provider's queue.
        """
        sources = {topology.DEAD_LETTER_QUEUE_PREFIX + q: q for q in self._work_queues()}
        return sources.get(dead_letter_queue)

    async def remove(self, matches: Callable[[bytes], bool], also: Iterable[str] = ()) -> int:
        """Delete the dead letters whose body `matches` picks, in this service's dead-letter
        queues and in those of `also`; the others stay where they were. Returns how many."""
        removed = 0
        async with self._removal, self._channel() as channel:
            for name in [*self.dead_letter_queues(), *also]:
                async for message in _browse(channel, name, limit=None):
                    if matches(message.body):
                        await message.ack()
                        removed += 1
        return removed

    async def purge(self, only: str | None) -> int:
        purged = 0
        async with self._channel() as channel:
            for name in self.dead_letter_queues(only):
                queue = await channel.get_queue(name, ensure=False)
                result = await queue.purge()
                purged += result.message_count or 0
        return purged


async def _browse(
    channel: AbstractChannel, queue_name: str, limit: int | None
) -> AsyncIterator[AbstractIncomingMessage]:
    """Take messages without acknowledging them; the channel's close returns the rest."""
    queue = await channel.get_queue(queue_name, ensure=False)
    taken = 0
    while limit is None or taken < limit:
        message = await queue.get(no_ack=False, fail=False)
        if message is None:
            return
        taken += 1
        yield message


async def _send_back(
    channel: AbstractChannel,
    message: AbstractIncomingMessage,
    letter: DeadLetter,
    source_queue: str | None,
) -> None:
    """To the queue it failed in, not back through its exchange: other consumers had it."""
    headers = {
        key: value
        for key, value in (message.headers or {}).items()
        if not key.startswith("x-rejected")
        and not key.startswith("x-original")
        and key not in (REASON_HEADER, *_REJECTION_HEADERS)
    }
    replay = aio_pika.Message(
        message.body,
        headers=headers,
        content_type=message.content_type,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
    if source_queue:
        await channel.default_exchange.publish(replay, routing_key=source_queue, mandatory=True)
    else:  # unroutable at the web shop's exchange: offer it to the exchange again
        exchange = await channel.get_exchange(
            message.exchange or topology.WEBSHOP_EXCHANGE, ensure=False
        )
        await exchange.publish(replay, routing_key=letter.routing_key, mandatory=False)
