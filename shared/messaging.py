"""How every service consumes and publishes: at least once in, effectively once out.

- Publishing is persistent, mandatory and confirmed: `publish` returns only once RabbitMQ has
  taken responsibility for the message, and raises if no queue would receive it (unless the
  caller says a message nobody is bound for yet may be dropped: `mandatory=False`).
- A consumed message is acknowledged only after its handler (store write and any follow-up
  publish) has finished.
- A message that can never be handled (not JSON, wrong shape, too large) is published to the
  dead-letter exchange with the reason in a header, then acknowledged: nothing is lost and the
  queue keeps moving. The reason names fields, never their values.
- A handler that fails for another reason (a database that is down) is retried after a back-off;
  the quorum queue's delivery limit dead-letters a message that keeps failing.
- The `rekisteri` tool's commands get one reply each (`subscribe_commands`), or, when the
  answer may be large, a stream of pages (`subscribe_streams`).
- Every message is judged by its sender, the AMQP `user_id` the broker vouches for
  (shared/senders.py): a command is carried out only for staff, and is kept in the service's
  audit log whatever its outcome; any other message is taken only from the party entitled to
  send it, and dead-lettered, with no effect, when it comes from anyone else.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import aio_pika
import aiormq
from faststream import AckPolicy, Context
from faststream.message import StreamMessage
from faststream.rabbit import Channel, RabbitBroker, RabbitExchange, RabbitResponse, RabbitRouter
from faststream.rabbit.annotations import RabbitBroker as BrokerInContext
from faststream.rabbit.annotations import RabbitMessage
from pydantic import BaseModel, TypeAdapter, ValidationError

from shared import metrics
from shared.audit import AUDIT_LOG, AuditLog
from shared.contracts.ops import OpsPage, OpsReply
from shared.contracts.runtime import AuditOutcome
from shared.log import error_location
from shared.metrics import Outcome
from shared.senders import (
    GUEST,
    ORIGINAL_USER_ID_HEADER,
    Logins,
    Senders,
    command_refusal,
    login_of,
    named_refusal,
    sender_of,
    sender_refusal,
)
from shared.settings import ServiceSettings
from shared.topology import DEAD_LETTER_EXCHANGE, DELIVERY_LIMIT, Subscription

JSON = "application/json"
MAX_RETRY_DELAY_SECONDS = 5.0

# Headers a message dead-lettered by a service carries (the broker adds its own `x-death`).
REASON_HEADER = "x-rejection-reason"
REJECTED_AT_HEADER = "x-rejected-at"
REJECTED_BY_HEADER = "x-rejected-by"
ORIGINAL_QUEUE_HEADER = "x-original-queue"
ORIGINAL_EXCHANGE_HEADER = "x-original-exchange"
ORIGINAL_ROUTING_KEY_HEADER = "x-original-routing-key"
LOGIN = "rabbitmq_login"
"""Where the broker's context holds the user it logs in as: every publish carries it."""

log = logging.getLogger(__name__)

Model = TypeVar("Model")


class InvalidMessage(Exception):
    """The message can never be handled; `reason` is safe to log (no values, only fields)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def make_broker(settings: ServiceSettings) -> RabbitBroker:
    broker = RabbitBroker(
        settings.rabbitmq_url,
        default_channel=Channel(
            prefetch_count=settings.prefetch_count,
            publisher_confirms=True,
            on_return_raises=True,
        ),
        app_id=settings.service_name,
        graceful_timeout=20.0,
        logger=logging.getLogger(f"{settings.service_name}.broker"),
        # Per-message lifecycle lines are debugging detail, not operations news.
        log_level=logging.DEBUG,
    )
    broker.context.set_global(LOGIN, login_of(settings.rabbitmq_url))
    return broker


_FIELD_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")


def describe_validation_error(error: ValidationError) -> str:
    """`buyer.email: value is not a valid email address; items: too short`, values left out.

    A location is the sender's too: an unknown key, or a dictionary's key, may be anything,
    an email included. Only parts shaped like field names are shown, others as `<key>`.
    Parsers' messages that describe the input (a UUID's "found `i` at 1") are cut to their
    first clause.
    """
    problems = []
    for detail in error.errors(include_url=False, include_input=False, include_context=False):
        parts = [
            str(part) if isinstance(part, int) or _FIELD_NAME.match(str(part)) else "<key>"
            for part in detail["loc"]
        ]
        message = detail["msg"]
        if detail["type"].endswith("_parsing"):
            message = message.split(",", 1)[0]
        location = ".".join(parts) or "message"
        problems.append(f"{location}: {message}")
    return "; ".join(problems[:10]) + ("; ..." if len(problems) > 10 else "")


def decode(body: bytes, adapter: TypeAdapter[Model], max_bytes: int) -> Model:
    """Parse and validate a JSON body strictly, or raise `InvalidMessage` saying why."""
    if len(body) > max_bytes:
        raise InvalidMessage(f"message is {len(body)} bytes; the limit is {max_bytes}")
    try:
        return adapter.validate_json(body, strict=True)
    except ValidationError as error:
        raise InvalidMessage(describe_validation_error(error)) from None


async def publish(
    broker: RabbitBroker,
    body: BaseModel | bytes,
    *,
    exchange: RabbitExchange | str,
    routing_key: str,
    message_id: str | None = None,
    message_type: str | None = None,
    headers: Mapping[str, Any] | None = None,
    correlation_id: str | None = None,
    persist: bool = True,
    mandatory: bool = True,
) -> None:
    """Publish JSON and wait for the broker's confirm; raises if a mandatory message is unroutable.

    Absent optional fields are left out rather than sent as null: a provider gets the
    people's data as the web shop sent it. The AMQP `user_id` is the service's login, which is
    how the receiver knows who sent it (a broker not made by `make_broker`, in tests, logs in
    as FastStream's default, guest).
    """
    payload = (
        body.model_dump_json(exclude_none=True).encode() if isinstance(body, BaseModel) else body
    )
    await broker.publish(
        payload,
        exchange=exchange,
        routing_key=routing_key,
        message_id=message_id,
        message_type=message_type,
        headers=dict(headers) if headers else None,
        correlation_id=correlation_id,
        content_type=JSON,
        persist=persist,
        mandatory=mandatory,
        user_id=broker.context.get(LOGIN, GUEST),
    )


async def dead_letter(
    message: RabbitMessage, queue_name: str, service: str, reason: str, sender: str | None = None
) -> None:
    """Publish the message, unchanged, to `dead-letter.<queue>` with why; confirmed.

    Sent on the channel the message came in on (it has publisher confirms): no broker object
    is needed, so handlers take no per-message dependencies. `sender`: the user it was judged
    to come from (its own `user_id` unless it was relayed), kept for a replay to carry on.
    """
    raw = message.raw_message
    headers = dict(raw.headers or {})
    headers.update(
        {
            REASON_HEADER: reason,
            REJECTED_AT_HEADER: datetime.now(UTC).isoformat(),
            REJECTED_BY_HEADER: service,
            ORIGINAL_QUEUE_HEADER: queue_name,
            ORIGINAL_EXCHANGE_HEADER: raw.exchange or "",
            ORIGINAL_ROUTING_KEY_HEADER: raw.routing_key or "",
            ORIGINAL_USER_ID_HEADER: sender or raw.user_id or "",
        }
    )
    await raw.channel.basic_publish(
        raw.body,
        exchange=DEAD_LETTER_EXCHANGE,
        routing_key=queue_name,
        properties=aiormq.spec.Basic.Properties(
            message_id=raw.message_id,
            content_type=raw.content_type,
            headers=headers,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT.value,
        ),
        mandatory=True,
    )


async def _raw_body(message: StreamMessage[Any]) -> bytes:
    """FastStream's decoder, replaced: bodies are decoded and validated here, with reasons."""
    return message.body


async def _whole_message(message: StreamMessage[Any]) -> StreamMessage[Any]:
    """FastStream's decoder, replaced: the handler gets the message itself as its argument.

    Asking for it through FastStream's context instead would resolve it in a worker thread
    for every message.
    """
    return message


def _previous_deliveries(message: RabbitMessage) -> int:
    """How often the broker delivered this message before (quorum queues count returns)."""
    return int((message.raw_message.headers or {}).get("x-delivery-count", 0) or 0)


def _retry_delay(message: RabbitMessage) -> float:
    """Back-off before a failed message goes back: 0.25 s, 0.5 s, 1 s ... capped."""
    return min(0.25 * 2 ** _previous_deliveries(message), MAX_RETRY_DELAY_SECONDS)


def _log_fields(message: RabbitMessage, queue_name: str) -> dict[str, Any]:
    return {"queue": queue_name, "message_id": message.raw_message.message_id}


async def _dead_letter_and_ack(
    message: RabbitMessage, queue_name: str, service: str, reason: str, sender: str | None
) -> None:
    await dead_letter(message, queue_name, service, reason, sender)
    await message.ack()
    log.warning(
        "dead-lettered a message", extra={**_log_fields(message, queue_name), "reason": reason}
    )


async def _retry_later(message: RabbitMessage, queue_name: str) -> None:
    log.exception(
        "handler failed; the message will be retried", extra=_log_fields(message, queue_name)
    )
    await asyncio.sleep(_retry_delay(message))
    await message.nack(requeue=True)


async def _deliver(
    message: RabbitMessage,
    queue_name: str,
    settings: ServiceSettings,
    handle: Callable[[], Awaitable[None]],
    sender: str | None,
) -> Outcome:
    """Run one delivery through `handle` and settle it: ack, dead-letter or retry later."""
    service = settings.service_name
    try:
        await handle()
    except InvalidMessage as invalid:
        await _dead_letter_and_ack(message, queue_name, service, invalid.reason, sender)
        return "dead_lettered"
    except Exception as error:
        if _previous_deliveries(message) + 1 < DELIVERY_LIMIT:
            await _retry_later(message, queue_name)
            return "retried"
        # The last delivery the queue allows: dead-letter it ourselves, with a reason the
        # broker's own `delivery_limit` dead-lettering could not give.
        reason = (
            f"the handler failed on all {DELIVERY_LIMIT} deliveries; last error "
            f"{type(error).__name__} at {error_location(error)}"
        )
        log.exception("handler failed for the last time", extra=_log_fields(message, queue_name))
        await _dead_letter_and_ack(message, queue_name, service, reason, sender)
        return "dead_lettered"
    await message.ack()
    return "handled"


def subscribe_events(
    router: RabbitRouter,
    subscription: Subscription,
    adapter: TypeAdapter[Model],
    settings: ServiceSettings,
    *,
    senders: Senders,
) -> Callable[[Callable[[Model], Awaitable[None]]], Callable[[Model], Awaitable[None]]]:
    """Register `handler(event)` for a queue with the delivery rules in this module's docstring.

    `senders`: who may send its messages; from anyone else a message is dead-lettered unread.
    """
    logins = Logins.of(settings)

    def register(handler: Callable[[Model], Awaitable[None]]) -> Callable[[Model], Awaitable[None]]:
        queue_name = subscription.queue_name

        @router.subscriber(
            subscription.queue,
            subscription.exchange,
            ack_policy=AckPolicy.MANUAL,
            decoder=_whole_message,
            no_reply=True,
            title=f"{queue_name}:consume",
        )
        async def consume(message: Any) -> None:
            raw = message.raw_message
            sender = sender_of(raw.user_id, raw.headers, senders, logins)

            async def handle() -> None:
                if refused := sender_refusal(sender, senders, logins):
                    raise InvalidMessage(refused)
                event = decode(message.body, adapter, settings.max_message_bytes)
                if refused := named_refusal(sender, senders, logins, event):
                    raise InvalidMessage(refused)
                await handler(event)

            with metrics.timed(queue_name) as record:
                record(await _deliver(message, queue_name, settings, handle, sender.user_id))

        return handler

    return register


Dispatch = Callable[[Any, str], Awaitable[Any]]


class CommandRefused(Exception):
    """A command that cannot be carried out; the text goes back to the operator as it is."""


def _actor(message: RabbitMessage, logins: Logins) -> str:
    """The AMQP `user_id` property, a staff user's: RabbitMQ refuses any but the login's."""
    actor = message.raw_message.user_id
    if refused := command_refusal(actor, logins):
        raise CommandRefused(refused)
    return str(actor)


def _outcome(error: Exception) -> AuditOutcome:
    if isinstance(error, InvalidMessage):
        return "invalid"
    return "refused" if isinstance(error, CommandRefused) else "failed"


def _explain_failure(
    error: Exception, message: RabbitMessage, queue_name: str, service: str
) -> str:
    """What the operator is told about a failed command; logs the unexpected (call in `except`)."""
    if isinstance(error, InvalidMessage):
        return f"invalid command: {error.reason}"
    if isinstance(error, CommandRefused):
        return str(error)
    log.exception("command failed", extra=_log_fields(message, queue_name))
    return (
        f"the {service} service failed; see its log (message id {message.raw_message.message_id})"
    )


async def _answer(
    message: RabbitMessage,
    queue_name: str,
    adapter: TypeAdapter[Any],
    settings: ServiceSettings,
    dispatch: Dispatch,
    audit: AuditLog,
) -> OpsReply:
    """Carry out the command and audit it; a reply whose audit entry is missing is withheld."""
    raw = message.raw_message
    command = None
    try:
        # Who sent it first: a command from anyone but staff is refused unread.
        actor = _actor(message, Logins.of(settings))
        command = decode(message.body, adapter, settings.max_message_bytes)
        reply = OpsReply(ok=True, result=await dispatch(command, actor))
        outcome: AuditOutcome = "ok"
    except Exception as error:
        outcome = _outcome(error)
        reply = OpsReply(
            ok=False,
            error=_explain_failure(error, message, queue_name, settings.service_name),
        )
    try:
        await audit.record(
            actor=raw.user_id or None,
            command=command,
            body=message.body,
            outcome=outcome,
            count=len(reply.result) if isinstance(reply.result, list) else None,
            message_id=raw.message_id,
        )
    except Exception:
        log.exception("audit entry not written", extra=_log_fields(message, queue_name))
        return OpsReply(
            ok=False,
            error=f"the {settings.service_name} service could not write its audit log, so it "
            "withholds the answer; the command may have taken effect",
        )
    return reply


def subscribe_commands(
    router: RabbitRouter,
    subscription: Subscription,
    adapter: TypeAdapter[Any],
    settings: ServiceSettings,
) -> Callable[[Dispatch], Dispatch]:
    """Register `dispatch(command, actor)` for the `rekisteri` tool's requests to this service.

    Every request gets exactly one reply (`OpsReply`), which FastStream sends to its
    `reply_to`; then the request is acknowledged. Commands are not retried: the operator sees
    the failure and decides. `actor` is the AMQP `user_id` property, which RabbitMQ checks
    against the sender's login; a command without one, or from a user who is not staff
    (shared/senders.py), is refused. Every command, carried out or not, leaves an entry in the
    service's audit log (shared/audit.py) before the reply.
    """

    def register(dispatch: Dispatch) -> Dispatch:
        queue_name = subscription.queue_name

        @router.subscriber(
            subscription.queue,
            subscription.exchange,
            ack_policy=AckPolicy.ACK,
            decoder=_raw_body,
            title=f"{queue_name}:consume",
        )
        async def serve(
            message: RabbitMessage, audit: Annotated[AuditLog, Context(AUDIT_LOG)]
        ) -> RabbitResponse:
            reply = await _answer(message, queue_name, adapter, settings, dispatch, audit)
            metrics.COMMANDS.labels(queue_name, str(reply.ok).lower()).inc()
            # Not mandatory: RabbitMQ returns a mandatory message sent to a direct reply-to
            # address as unroutable even when it delivers it.
            return RabbitResponse(
                reply.model_dump_json(exclude_none=True).encode(),
                mandatory=False,
                content_type=JSON,
            )

        return dispatch

    return register


@dataclass(frozen=True)
class Stream:
    """An answer sent in pages: `total` rows in all, then the rows, one list per page.

    `pages` should read its rows a page at a time (a cursor over an index), so that neither the
    service nor the requester ever holds more than a page.
    """

    total: int
    pages: AsyncIterable[list[Any]]


StreamDispatch = Callable[[Any, str], Awaitable[Stream]]


class _PageSender:
    """Numbers the pages of one answer and sends each to the requester, confirmed."""

    def __init__(self, broker: RabbitBroker, message: RabbitMessage) -> None:
        self._broker = broker
        self._reply_to = message.raw_message.reply_to or ""
        self._correlation_id = message.raw_message.correlation_id
        self._sequence = 0
        self.total: int | None = None

    async def send(self, rows: list[Any], *, final: bool = False, error: str | None = None) -> None:
        page = OpsPage(
            sequence=self._sequence,
            total=self.total if self._sequence == 0 else None,
            rows=rows,
            final=final,
            error=error,
        )
        # Not mandatory, like every reply (see `subscribe_commands`).
        await publish(
            self._broker,
            page,
            exchange="",
            routing_key=self._reply_to,
            correlation_id=self._correlation_id,
            persist=False,
            mandatory=False,
        )
        self._sequence += 1


def subscribe_streams(
    router: RabbitRouter,
    subscription: Subscription,
    adapter: TypeAdapter[Any],
    settings: ServiceSettings,
) -> Callable[[StreamDispatch], StreamDispatch]:
    """Register `dispatch(command, actor) -> Stream` for commands answered in pages.

    For answers that can grow with the register (an export): instead of one `OpsReply`, the
    requester's `reply_to` gets `OpsPage`s with the request's correlation id, numbered from 0;
    the first carries the `total`, the last is `final`. An invalid or refused command, or a
    failure midway, ends the answer with a final page carrying `error`. Each page is confirmed
    by the broker before the next is read, so memory does not grow with the answer. Pages for
    a requester that has stopped listening are dropped by RabbitMQ.

    The request is acknowledged on arrival: an answer cannot be resumed, so one cut short by a
    crash is not started again for a requester that has given up (it sees the pages stop).
    The client side is `rekisteri.client.OpsClient.stream`. (The broker comes from FastStream's
    context: a cost per export, not per event.)
    """
    logins = Logins.of(settings)

    def register(dispatch: StreamDispatch) -> StreamDispatch:
        queue_name = subscription.queue_name

        @router.subscriber(
            subscription.queue,
            subscription.exchange,
            ack_policy=AckPolicy.ACK_FIRST,
            decoder=_raw_body,
            no_reply=True,
            title=f"{queue_name}:consume",
        )
        async def serve(
            message: RabbitMessage,
            broker: BrokerInContext,
            audit: Annotated[AuditLog, Context(AUDIT_LOG)],
        ) -> None:
            pages = _PageSender(broker, message)
            raw = message.raw_message
            command, stream, failure = None, None, None
            try:
                actor = _actor(message, logins)
                command = decode(message.body, adapter, settings.max_message_bytes)
                stream = await dispatch(command, actor)
            except Exception as error:
                failure = error
            try:
                # Exports are audited before a single row leaves the service.
                await audit.record(
                    actor=raw.user_id or None,
                    command=command,
                    body=message.body,
                    outcome="ok" if failure is None else _outcome(failure),
                    count=stream.total if stream is not None else None,
                    message_id=raw.message_id,
                )
            except Exception:
                log.exception("audit entry not written", extra=_log_fields(message, queue_name))
                await pages.send(
                    [],
                    final=True,
                    error=f"the {settings.service_name} service could not write its audit log, "
                    "so it withholds the answer",
                )
                metrics.COMMANDS.labels(queue_name, "false").inc()
                return
            try:
                if failure is not None:
                    raise failure
                assert stream is not None
                pages.total = stream.total
                async for rows in stream.pages:
                    await pages.send(rows)
                await pages.send([], final=True)
            except Exception as error:
                explanation = _explain_failure(error, message, queue_name, settings.service_name)
                await pages.send([], final=True, error=explanation)
                metrics.COMMANDS.labels(queue_name, "false").inc()
                return
            metrics.COMMANDS.labels(queue_name, "true").inc()

        return dispatch

    return register
