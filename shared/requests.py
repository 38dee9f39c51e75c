"""Questions one service asks another and waits for: request and reply over direct reply-to.

Most messages between the services are events, handled whenever the receiver gets to them. A
few questions need their answer before the asker can go on: the erasure service asks the orders
service who is on an order (`person.lookup`). The asker publishes the question to
`register.events`, not persistent, with RabbitMQ's direct reply-to as `reply_to`, and waits up to
a timeout; the answering service answers every question exactly once, then acknowledges it.

- A question is judged by its sender as every message is (shared/senders.py): from anyone but
  the parties entitled to ask, or unreadable, it is dead-lettered with the reason and answered
  with that reason as the answer's `error`. It has no effect.
- A question the service fails to answer otherwise is answered with an `error` pointing to its
  log. The asker treats that as it treats no answer in time (`NoAnswer`): its own handler fails,
  and its message is retried after a back-off (shared/messaging.py).
- A question that waits while the answering service is down is answered once it is back; the
  asker has stopped waiting by then, and RabbitMQ drops a reply nobody waits for.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from faststream import AckPolicy
from faststream.message import StreamMessage
from faststream.rabbit import RabbitBroker, RabbitExchange, RabbitResponse, RabbitRouter
from faststream.rabbit.annotations import RabbitMessage
from pydantic import BaseModel, TypeAdapter

from shared import messaging, metrics
from shared.messaging import JSON, LOGIN, InvalidMessage, decode
from shared.senders import GUEST, Logins, Senders, sender_of, sender_refusal
from shared.settings import ServiceSettings
from shared.topology import Subscription

log = logging.getLogger(__name__)

Answer = Callable[[Any], Awaitable[BaseModel]]
Reply = TypeVar("Reply", bound=BaseModel)


class NoAnswer(Exception):
    """The question got no answer in time, or one saying the other service failed; the text
    names no personal data."""


async def _raw_body(message: StreamMessage[Any]) -> bytes:
    """FastStream's decoder, replaced: bodies are decoded and validated here, with reasons."""
    return message.body


def subscribe_requests(
    router: RabbitRouter,
    subscription: Subscription,
    adapter: TypeAdapter[Any],
    settings: ServiceSettings,
    *,
    senders: Senders,
    failed: Callable[[str], BaseModel],
) -> Callable[[Answer], Answer]:
    """Register `answer(question) -> reply` for the questions of one queue, by the rules in
    this module's docstring. `failed(error)`: the reply that says the question was not answered.
    """
    logins = Logins.of(settings)
    service = settings.service_name

    def register(answer: Answer) -> Answer:
        queue_name = subscription.queue_name

        @router.subscriber(
            subscription.queue,
            subscription.exchange,
            ack_policy=AckPolicy.ACK,
            decoder=_raw_body,
            title=f"{queue_name}:consume",
        )
        async def serve(message: RabbitMessage) -> RabbitResponse:
            raw = message.raw_message
            sender = sender_of(raw.user_id, raw.headers, senders, logins)
            ids = {"queue": queue_name, "message_id": raw.message_id}
            with metrics.timed(queue_name) as record:
                try:
                    if refused := sender_refusal(sender, senders, logins):
                        raise InvalidMessage(refused)
                    reply = await answer(decode(message.body, adapter, settings.max_message_bytes))
                    record("handled")
                except InvalidMessage as invalid:
                    await messaging.dead_letter(
                        message, queue_name, service, invalid.reason, sender.user_id
                    )
                    log.warning("dead-lettered a question", extra={**ids, "reason": invalid.reason})
                    reply = failed(invalid.reason)
                    record("dead_lettered")
                except Exception:
                    log.exception("a question was not answered", extra=ids)
                    reply = failed(
                        f"the {service} service failed; see its log (message id {raw.message_id})"
                    )
                    record("retried")  # by the asker, whose handler fails in turn
            # Not mandatory: RabbitMQ returns a mandatory message sent to a direct reply-to
            # address as unroutable even when it delivers it.
            return RabbitResponse(
                reply.model_dump_json(exclude_none=True).encode(),
                mandatory=False,
                content_type=JSON,
            )

        return answer

    return register


async def ask(
    broker: RabbitBroker,
    question: BaseModel,
    reply: type[Reply],
    *,
    exchange: RabbitExchange,
    routing_key: str,
    seconds: float,
) -> Reply:
    """Publish `question` and wait up to `seconds` for its answer; `NoAnswer` if none
    comes, or if the answer is not to this question. (FastStream asks one question at a time
    per broker: questions are rare, and each is answered at once.)"""
    correlation_id = str(uuid.uuid4())
    try:
        message = await broker.request(
            question.model_dump_json(exclude_none=True).encode(),
            exchange=exchange,
            routing_key=routing_key,
            correlation_id=correlation_id,
            content_type=JSON,
            user_id=broker.context.get(LOGIN, GUEST),
            timeout=seconds,
        )
    except TimeoutError:
        raise NoAnswer(f"no answer to {routing_key} within {seconds:g} s") from None
    if message.correlation_id != correlation_id:
        # A late answer to an earlier question that had been given up on.
        raise NoAnswer(f"the answer to {routing_key} was not to this question")
    return reply.model_validate_json(message.body)
