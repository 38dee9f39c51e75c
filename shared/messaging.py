"""How every service consumes and publishes: at least once in, effectively once out.

FastStream does the work; this module gives it the register's rules.

- Each handler takes the message's contract (`async def on_order_placed(event: OrderPlaced)`).
  The body is validated strictly by the subscription's decoder (`strict_decoder`), never
  leniently, so a message of the wrong shape never reaches a handler.
- A consumed message is acknowledged only after its handler (store write and any follow-up
  publish) has finished. `DeliveryRules`, a FastStream middleware around each subscription,
  settles every delivery:
  - a message that can never be handled (not JSON, wrong shape, too large, or refused by the
    service: `shared.errors.Refused`) is published to the dead-letter exchange with the reason
    in a header, then acknowledged: nothing is lost and the queue keeps moving. The reason
    names fields, never their values;
  - a handler that fails for another reason (a database that is down) is retried after a
    back-off; its last delivery the queue allows is dead-lettered with the error's type and
    place.
- Every message is judged by its sender, the AMQP `user_id` the broker vouches for
  (shared/senders.py): a message is taken only from the party entitled to send it, and
  dead-lettered, with no effect, when it comes from anyone else. (Commands, for staff only, are
  shared/commands.py's.)
- What a service publishes is declared (`Publication`), so that FastStream knows it: persistent,
  mandatory and confirmed, returning only once RabbitMQ has taken responsibility for the
  message, and raising if no queue would receive it (unless a message nobody is bound for yet
  may be dropped: `mandatory=False`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import aio_pika
import aiormq
from faststream import AckPolicy
from faststream.message import StreamMessage
from faststream.middlewares import BaseMiddleware
from faststream.rabbit import Channel, RabbitBroker, RabbitExchange, RabbitRouter
from faststream.rabbit.annotations import RabbitMessage
from pydantic import BaseModel, TypeAdapter, ValidationError

from shared import metrics
from shared.errors import Refused
from shared.log import error_location
from shared.metrics import Outcome
from shared.senders import (
    GUEST,
    ORIGINAL_USER_ID_HEADER,
    Logins,
    Senders,
    login_of,
    named_refusal,
    sender_of,
    sender_refusal,
)
from shared.settings import ServiceSettings
from shared.topology import (
    DEAD_LETTER_EXCHANGE,
    DELIVERY_LIMIT,
    Subscription,
    register_events_exchange,
)

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
Handler = Callable[[Model], Awaitable[None]]
Rules = TypeVar("Rules")
Registered = TypeVar("Registered", bound=Callable[..., Awaitable[Any]])


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


# --- reading a body ----------------------------------------------------------------------------

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


def strict_decoder(
    adapter: TypeAdapter[Model], max_bytes: int
) -> Callable[[StreamMessage[Any]], Awaitable[Model]]:
    """A subscription's FastStream decoder: the body as its contract, validated strictly, or
    `InvalidMessage` with the reason. (FastStream's own would parse any JSON and leave the
    handler's annotation to coerce it leniently.) FastStream keeps what it returns for the
    message, so a middleware that reads the body first does not decode it twice."""

    async def decode_strictly(message: StreamMessage[Any]) -> Model:
        return decode(message.body, adapter, max_bytes)

    return decode_strictly


def as_json(body: BaseModel) -> bytes:
    """Absent optional fields are left out rather than sent as null: a provider gets the
    people's data as the web shop sent it."""
    return body.model_dump_json(exclude_none=True).encode()


# --- publishing --------------------------------------------------------------------------------


class Publication:
    """One kind of message a service publishes, declared to FastStream (and so in its AsyncAPI).

    Persistent, confirmed (the broker's channel has publisher confirms) and, unless declared
    otherwise, mandatory: `publish` returns once RabbitMQ has taken the message, and raises if no
    queue would receive it. The AMQP `user_id` is the service's login, which is how the receiver
    knows who sent it (a broker not made by `make_broker`, in tests, logs in as guest).
    """

    def __init__(
        self,
        broker: RabbitBroker,
        *,
        exchange: RabbitExchange,
        routing_key: str,
        schema: type[BaseModel],
        title: str,
        description: str,
        mandatory: bool = True,
        persist: bool = True,
    ) -> None:
        self.routing_key = routing_key
        self._publisher = broker.publisher(
            exchange=exchange,
            routing_key=routing_key,
            mandatory=mandatory,
            persist=persist,
            content_type=JSON,
            user_id=broker.context.get(LOGIN, GUEST),
            schema=schema,
            title=title,
            description=description,
        )

    async def publish(
        self,
        body: BaseModel,
        *,
        message_id: str,
        message_type: str | None = None,
        routing_key: str = "",
    ) -> None:
        """`routing_key`: for a publication declared with a placeholder (`{provider_id}`)."""
        await self._publisher.publish(
            as_json(body), routing_key=routing_key, message_id=message_id, message_type=message_type
        )

    async def request(
        self, body: BaseModel, *, correlation_id: str, seconds: float
    ) -> StreamMessage[Any]:
        """Publish and wait up to `seconds` for the answer over direct reply-to."""
        return await self._publisher.request(
            as_json(body), correlation_id=correlation_id, timeout=seconds
        )


def service_event(
    broker: RabbitBroker,
    routing_key: str,
    schema: type[BaseModel],
    description: str,
    **options: bool,
) -> Publication:
    """What one service tells or asks another over `register.events`, titled by its routing
    key; `options`: `mandatory`, `persist` as `Publication`'s."""
    return Publication(
        broker,
        exchange=register_events_exchange(),
        routing_key=routing_key,
        schema=schema,
        title=routing_key,
        description=description,
        **options,
    )


# --- dead letters ------------------------------------------------------------------------------


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


def log_fields(message: StreamMessage[Any], queue_name: str) -> dict[str, Any]:
    return {"queue": queue_name, "message_id": message.raw_message.message_id}


# --- the delivery rules ------------------------------------------------------------------------


def _previous_deliveries(message: RabbitMessage) -> int:
    """How often the broker delivered this message before (quorum queues count returns)."""
    return int((message.raw_message.headers or {}).get("x-delivery-count", 0) or 0)


def _retry_delay(message: RabbitMessage) -> float:
    """Back-off before a failed message goes back: 0.25 s, 0.5 s, 1 s ... capped."""
    return min(0.25 * 2 ** _previous_deliveries(message), MAX_RETRY_DELAY_SECONDS)


@dataclass(frozen=True, slots=True)
class DeliveryRules:
    """The rules of this module's docstring for one subscription, as a FastStream middleware
    (a factory FastStream calls for each message, like its own `CriticalLogMiddleware`).

    `senders`: who may send its messages; from anyone else a message is dead-lettered unread.
    """

    queue_name: str
    service: str
    senders: Senders
    logins: Logins

    def __call__(self, msg: Any, /, *, context: Any) -> BaseMiddleware:
        return _Delivery(msg, context=context, rules=self)

    async def settle(
        self, message: RabbitMessage, handle: Callable[[RabbitMessage], Awaitable[Any]]
    ) -> Outcome:
        """Run one delivery through `handle` (FastStream's decoder and the handler) and settle
        it: ack, dead-letter or retry later."""
        raw = message.raw_message
        sender = sender_of(raw.user_id, raw.headers, self.senders, self.logins)
        try:
            if refused := sender_refusal(sender, self.senders, self.logins):
                raise InvalidMessage(refused)
            if self.senders.named_by is not None and (
                refused := named_refusal(sender, self.senders, self.logins, await message.decode())
            ):
                raise InvalidMessage(refused)
            await handle(message)
        except (InvalidMessage, Refused) as never_handled:
            # Unreadable, from the wrong sender, or refused by the service: never retried.
            await self._dead_letter(message, str(never_handled), sender.user_id)
            return "dead_lettered"
        except Exception as error:
            if _previous_deliveries(message) + 1 < DELIVERY_LIMIT:
                log.exception(
                    "handler failed; the message will be retried",
                    extra=log_fields(message, self.queue_name),
                )
                await asyncio.sleep(_retry_delay(message))
                await message.nack(requeue=True)
                return "retried"
            # The last delivery the queue allows: dead-letter it ourselves, with a reason the
            # broker's own `delivery_limit` dead-lettering could not give.
            reason = (
                f"the handler failed on all {DELIVERY_LIMIT} deliveries; last error "
                f"{type(error).__name__} at {error_location(error)}"
            )
            log.exception(
                "handler failed for the last time", extra=log_fields(message, self.queue_name)
            )
            await self._dead_letter(message, reason, sender.user_id)
            return "dead_lettered"
        await message.ack()
        return "handled"

    async def _dead_letter(self, message: RabbitMessage, reason: str, sender: str | None) -> None:
        await dead_letter(message, self.queue_name, self.service, reason, sender)
        await message.ack()
        log.warning(
            "dead-lettered a message",
            extra={**log_fields(message, self.queue_name), "reason": reason},
        )


class RuledMiddleware(BaseMiddleware, Generic[Rules]):
    """A FastStream middleware for one message, made by its subscription's `rules` (a frozen
    dataclass FastStream calls, as a factory, for each message)."""

    __slots__ = ("rules",)

    def __init__(self, msg: Any, /, *, context: Any, rules: Rules) -> None:
        super().__init__(msg, context=context)
        self.rules = rules


class _Delivery(RuledMiddleware[DeliveryRules]):
    async def consume_scope(
        self, call_next: Callable[[Any], Awaitable[Any]], msg: StreamMessage[Any]
    ) -> None:
        with metrics.timed(self.rules.queue_name) as record:
            record(await self.rules.settle(msg, call_next))  # type: ignore[arg-type]


def subscriber(
    router: RabbitRouter,
    subscription: Subscription,
    adapter: TypeAdapter[Any],
    settings: ServiceSettings,
    rules: Callable[..., BaseMiddleware],
    *,
    description: str | None = None,
    **options: Any,
) -> Callable[[Registered], Registered]:
    """Register a handler for one queue, its body read strictly as `adapter`'s contract and
    each message passed through `rules` (a middleware factory); `options` are FastStream's.

    `description` (the handler's docstring unless given) describes the subscription in the
    AsyncAPI document, and the handler's annotation the message's schema. A router of its own
    carries the rules to its one subscriber.
    """
    own = RabbitRouter(middlewares=(rules,))
    router.include_router(own)

    def register(handler: Registered) -> Registered:
        own.subscriber(
            subscription.queue,
            subscription.exchange,
            decoder=strict_decoder(adapter, settings.max_message_bytes),
            title=subscription.queue_name,
            description=description or inspect.getdoc(handler),
            **options,
        )(handler)
        return handler

    return register


def subscribe_events(
    router: RabbitRouter,
    subscription: Subscription,
    adapter: TypeAdapter[Model],
    settings: ServiceSettings,
    *,
    senders: Senders,
    description: str | None = None,
) -> Callable[[Handler[Model]], Handler[Model]]:
    """Register `handler(event)` for a queue, by the rules in this module's docstring;
    `description` as `subscriber`'s.

    The handler takes nothing but the event: FastStream resolves nothing else per message
    (`no_reply`, no context), which the profile of a burst of events found costly once.
    """
    rules = DeliveryRules(
        subscription.queue_name, settings.service_name, senders, Logins.of(settings)
    )
    return subscriber(
        router,
        subscription,
        adapter,
        settings,
        rules,
        description=description,
        ack_policy=AckPolicy.MANUAL,
        no_reply=True,
    )
