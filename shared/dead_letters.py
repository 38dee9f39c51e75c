"""What a service tells operators about its own queues, and how it repairs its dead letters.

Every service answers `status`, `dlq.list`, `dlq.replay` and `dlq.purge` for the queues it
owns (wired by shared/runtime.py). Dead letters are read with `basic.get` on a channel of
their own and left unacknowledged, so closing the channel puts every one not replayed back.
A listing shows why, from where and when, and a preview whose personal data is masked. An
erasure takes the person's dead letters out (`remove`, `mentions_subject`); the daily retention
sweep those set aside too long ago (`expire`, `set_aside_at`), and `status` says since when the
oldest of each queue has waited.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

import aio_pika
import orjson
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractIncomingMessage,
    AbstractQueue,
)
from aio_pika.connection import make_url
from aiormq.exceptions import ChannelNotFoundEntity
from pydantic import TypeAdapter

from shared import topology
from shared.contracts.erasure import Role
from shared.contracts.fields import Email
from shared.contracts.runtime import DeadLetter, QueueStatus
from shared.dead_letter_age import set_aside_at
from shared.identity import SubjectHasher
from shared.messaging import (
    ORIGINAL_QUEUE_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
    REASON_HEADER,
    REJECTED_AT_HEADER,
    REJECTED_BY_HEADER,
)
from shared.senders import RELAYED_FOR_HEADER, first_sender, login_of

log = logging.getLogger(__name__)

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
    """Every string in a JSON value, the keys of objects included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


_EMAIL = TypeAdapter(Email)
ROLES: tuple[Role, ...] = get_args(Role)
_SUBJECT = re.compile(r"[0-9a-f]{64}")
# Where an address may sit inside a longer text (`Aino <aino@example.fi>`, a note).
_SEPARATORS = re.compile(r"[\s<>()\[\],;:\"']+")


def email_subjects(text: str, hasher: SubjectHasher) -> set[str]:
    """Every keyed hash under which a service can have filed the address(es) in `text`.

    The services hash an email after the contracts' validation (`Email`: the domain lower-cased
    and an IDNA domain in its Unicode form) through `SubjectHasher`, which normalises it
    (shared/identity.py). A dead letter holds the address as its sender wrote it, maybe one
    the contract refused, so each candidate is hashed both as the contract would hand it on
    and as written.
    """
    candidates = {text, *(part for part in _SEPARATORS.split(text) if "@" in part)}
    subjects = set()
    for candidate in candidates:
        # An address no normalisation takes (a bad IDNA label) was filed under no hash.
        with contextlib.suppress(ValueError):
            subjects.add(hasher(candidate))
        with contextlib.suppress(ValueError):
            subjects.add(hasher(_EMAIL.validate_python(candidate)))
    return subjects


def _people_without_email(value: Any) -> Iterator[tuple[str, str]]:
    """(order id, role) of each person on an order in the message who has no email: the
    register knows them by their place on the order (a gift-card recipient)."""
    if isinstance(value, dict):
        order_id = value.get("order_id")
        if isinstance(order_id, str):
            for role in ROLES:
                person = value.get(role)
                if isinstance(person, dict) and not person.get("email"):
                    yield order_id, role
        for item in value.values():
            yield from _people_without_email(item)
    elif isinstance(value, list):
        for item in value:
            yield from _people_without_email(item)


def mentions_subject(body: bytes, subject: str, hasher: SubjectHasher) -> bool:
    """Whether a JSON message names the person: an email of theirs anywhere in it (a buyer's,
    a recipient's, one in a text), compared by keyed hash as the services compute it; their
    place on an order, for a person without an email; or their subject hash itself (internal
    messages, ids built from it). A body that is not JSON names nobody the register can tell."""
    if not _SUBJECT.fullmatch(subject):
        # Anything shorter would be found inside unrelated text: never delete by it.
        raise ValueError("a subject is a keyed hash: 64 hexadecimal digits")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return any(
        subject in text or ("@" in text and subject in email_subjects(text, hasher))
        for text in _strings(data)
    ) or any(
        hasher.of_order_person(order_id, role) == subject
        for order_id, role in _people_without_email(data)
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


@dataclass(frozen=True)
class _DeadLetterQueue:
    name: str
    source: str | None
    """The queue whose failures it holds, known from its name, never from a message's headers,
    which their sender wrote. None: the web shop's unroutable catch-all, whose messages never
    reached a queue."""
    provided: bool
    """Whether the source is a queue the service declares for others (a provider's)."""

    @classmethod
    def of(cls, source: str, *, provided: bool) -> _DeadLetterQueue:
        return cls(topology.DEAD_LETTER_QUEUE_PREFIX + source, source, provided)

    def may_send_back(self, message: AbstractIncomingMessage) -> bool:
        """A replay to a provider's queue only of what the broker dead-lettered from it (the
        provider rejected it), never of what a service sent to the dead-letter exchange."""
        if not self.provided:
            return True
        headers = message.headers or {}
        died_in = _text(_first_death(message).get("queue"))
        return REJECTED_BY_HEADER not in headers and died_in == self.source


Queues = Callable[[], Awaitable[Iterable[str]]]
"""The queues a service declares for others to consume (the providers'), asked anew each time:
providers are added while the service runs."""


class QueueInspector:
    """One service's view of its queues, over a connection of its own.

    It answers for the dead letters of the queues it consumes (`work_queues`), of the queues it
    declares for others (`provided_queues`: a provider's rejected disclosures), and `extra`
    dead-letter queues it owns (the web shop's unroutable catch-all). One per service
    (shared/runtime.py `queue_inspector`), shared by the runtime commands and the erasure.
    """

    def __init__(
        self,
        rabbitmq_url: str,
        work_queues: Callable[[], Iterable[str]],
        command_queues: Callable[[], Iterable[str]],
        extra_dead_letter_queues: Iterable[str] = (),
        provided_queues: Queues | None = None,
    ) -> None:
        self._url = rabbitmq_url
        self._work_queues = work_queues
        self._command_queues = command_queues
        self._extra_dead_letter_queues = tuple(extra_dead_letter_queues)
        self._provided_queues = provided_queues
        # Browsing holds every dead letter it has taken until it is done, out of sight of any
        # other browsing: a listing or replay during an erasure's removal would hide the
        # person's messages from it (and a replay could put them back where they came from),
        # a purge would not delete them. So each takes its turn.
        self._turn = asyncio.Lock()

    def answer_also_for(self, provided_queues: Queues) -> None:
        """Answer for the dead letters of these queues too (see `provided_queues`)."""
        self._provided_queues = provided_queues

    async def _queues(self, only: str | None = None) -> list[_DeadLetterQueue]:
        """The dead-letter queues answered for (those of `only`: named as the dead-letter queue
        or as its source)."""
        provided = await self._provided_queues() if self._provided_queues is not None else ()
        queues = [
            *(_DeadLetterQueue.of(queue, provided=False) for queue in self._work_queues()),
            *(_DeadLetterQueue.of(queue, provided=True) for queue in provided),
            *(
                _DeadLetterQueue(name, None, provided=False)
                for name in self._extra_dead_letter_queues
            ),
        ]
        unique = list({queue.name: queue for queue in queues}.values())
        if only is None:
            return unique
        return [q for q in unique if only in (q.name, q.source)]

    async def dead_letter_queues(self, only: str | None = None) -> list[str]:
        return [queue.name for queue in await self._queues(only)]

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AbstractConnection]:
        connection = aio_pika.Connection(make_url(self._url))
        try:
            await connection.connect()
        except BaseException:
            # A service stopping while its sweep connects cancels the connect: what was opened
            # is closed, not left to the garbage collector (`aio_pika.connect` would leave it).
            await connection.close()
            raise
        async with connection:
            yield connection

    async def status(self) -> list[QueueStatus]:
        """Each queue's depth and consumers; a dead-letter queue's also since when its oldest
        message (the one at its head) has waited, for `rekisteri status`'s warning."""
        kinds = (
            [(q, "work") for q in self._work_queues()]
            + [(q, "dead-letter") for q in await self.dead_letter_queues()]
            + [(q, "commands") for q in self._command_queues()]
        )
        statuses = []
        # Its turn: a peeked message is out of an erasure's sight until the channel closes.
        async with self._turn, self._connection() as connection:
            for name, kind in kinds:
                async with _opened(connection, name) as opened:
                    if opened is None:
                        continue
                    result = opened[1].declaration_result
                    messages = result.message_count or 0
                    oldest = None
                    if kind == "dead-letter" and messages:
                        head = await opened[1].get(no_ack=False, fail=False)
                        oldest = None if head is None else set_aside_at(head)
                    statuses.append(
                        QueueStatus(
                            queue=name,
                            kind=kind,  # type: ignore[arg-type]
                            messages=messages,
                            consumers=result.consumer_count or 0,
                            oldest_at=oldest,
                        )
                    )
        return statuses

    async def list(self, only: str | None, limit: int) -> list[DeadLetter]:
        found: list[DeadLetter] = []
        async with self._turn, self._connection() as connection:
            for name in await self.dead_letter_queues(only):
                async with _opened(connection, name) as opened:
                    if opened is None:
                        continue
                    async for message in _browse(opened[1], limit - len(found)):
                        found.append(describe(message, name))
        return found

    async def replay(self, ids: set[str] | None, only: str | None) -> list[str]:
        """Republish to the source queue and remove from the dead-letter queue; returns ids.

        Only what the queue held when the replay began: a replayed message that fails again
        comes back behind those, and is not replayed a second time.
        """
        replayed = []
        async with self._turn, self._connection() as connection:
            for dead_letters in await self._queues(only):
                async with _opened(connection, dead_letters.name) as opened:
                    if opened is None:
                        continue
                    channel, queue = opened
                    waiting = queue.declaration_result.message_count or 0
                    async for message in _browse(queue, limit=waiting):
                        letter = describe(message, dead_letters.name)
                        if ids is not None and letter.id not in ids:
                            continue
                        if not dead_letters.may_send_back(message):
                            log.warning(
                                "dead letter not replayed: the broker did not dead-letter it "
                                "from the provider's queue it would go back to",
                                extra={"queue": dead_letters.name, "dead_letter_id": letter.id},
                            )
                            continue
                        await _send_back(
                            channel, message, letter, dead_letters.source, login_of(self._url)
                        )
                        await message.ack()
                        replayed.append(letter.id)
        return replayed

    async def remove(self, matches: Callable[[bytes], bool]) -> int:
        """Delete the dead letters whose body `matches` picks, in every dead-letter queue this
        service answers for; the others stay where they were. Returns how many."""
        removed = 0
        async with self._turn, self._connection() as connection:
            names = dict.fromkeys(await self.dead_letter_queues())
            for name in names:
                async with _opened(connection, name) as opened:
                    if opened is None:
                        continue
                    async for message in _browse(opened[1], limit=None):
                        if matches(message.body):
                            await message.ack()
                            removed += 1
        return removed

    async def expire(self, before: datetime, *, delete: bool) -> int:
        """The dead letters set aside before `before` (`set_aside_at`), in every dead-letter
        queue this service answers for: counted, and with `delete` deleted; the others stay
        where they were. A message whose time cannot be told is kept."""
        found = 0
        async with self._turn, self._connection() as connection:
            for name in await self.dead_letter_queues():
                async with _opened(connection, name) as opened:
                    if opened is None:
                        continue
                    waiting = opened[1].declaration_result.message_count or 0
                    async for message in _browse(opened[1], limit=waiting):
                        moment = set_aside_at(message)
                        if moment is None or moment >= before:
                            continue
                        found += 1
                        if delete:
                            await message.ack()
        return found

    async def purge(self, only: str | None) -> int:
        purged = 0
        async with self._turn, self._connection() as connection:
            for name in await self.dead_letter_queues(only):
                async with _opened(connection, name) as opened:
                    if opened is None:
                        continue
                    result = await opened[1].purge()
                    purged += result.message_count or 0
        return purged


@asynccontextmanager
async def _opened(
    connection: AbstractConnection, queue_name: str
) -> AsyncIterator[tuple[AbstractChannel, AbstractQueue] | None]:
    """The queue on a channel of its own, or None if it does not exist (a provider's, between
    the provider's registration and its queue's declaration). Closing the channel puts back
    every message taken from the queue and not acknowledged."""
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    try:
        try:
            queue: AbstractQueue | None = await channel.declare_queue(queue_name, passive=True)
        except ChannelNotFoundEntity:  # the broker has closed the channel
            queue = None
        yield None if queue is None else (channel, queue)
    finally:
        if not channel.is_closed:
            await channel.close()


async def _browse(
    queue: AbstractQueue, limit: int | None
) -> AsyncIterator[AbstractIncomingMessage]:
    """Take messages without acknowledging them; the channel's close returns the rest."""
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
    login: str,
) -> None:
    """To the queue it failed in, not back through its exchange: other consumers had it.

    Sent under the replaying service's own login (RabbitMQ allows no other `user_id`), naming
    the message's first sender in `RELAYED_FOR_HEADER`, which its receiver believes only from
    a relay it trusts (shared/senders.py)."""
    headers = {
        key: value
        for key, value in (message.headers or {}).items()
        if not key.startswith("x-rejected")
        and not key.startswith("x-original")
        and key not in (REASON_HEADER, *_REJECTION_HEADERS)
    }
    headers[RELAYED_FOR_HEADER] = first_sender(
        message.user_id, message.headers, unroutable=source_queue is None
    )
    replay = aio_pika.Message(
        message.body,
        headers=headers,
        content_type=message.content_type,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        user_id=login,
    )
    if source_queue:
        await channel.default_exchange.publish(replay, routing_key=source_queue, mandatory=True)
    else:  # unroutable at the web shop's exchange: offer it to the exchange again
        exchange = await channel.get_exchange(
            message.exchange or topology.WEBSHOP_EXCHANGE, ensure=False
        )
        await exchange.publish(replay, routing_key=letter.routing_key, mandatory=False)
