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
from dataclasses import dataclass
from typing import Any, TypeVar

from faststream import AckPolicy
from faststream.message import StreamMessage
from faststream.middlewares import BaseMiddleware
from faststream.rabbit import RabbitResponse, RabbitRouter
from pydantic import BaseModel, TypeAdapter

from shared import messaging, metrics
from shared.errors import Refused
from shared.messaging import (
    JSON,
    InvalidMessage,
    Publication,
    RuledMiddleware,
    as_json,
    log_fields,
    subscriber,
)
from shared.senders import Logins, Senders, sender_of, sender_refusal
from shared.settings import ServiceSettings
from shared.topology import Subscription

log = logging.getLogger(__name__)

Answer = Callable[[Any], Awaitable[BaseModel]]
Reply = TypeVar("Reply", bound=BaseModel)


class NoAnswer(Exception):
    """The question got no answer in time, or one saying the other service failed; the text
    names no personal data."""


@dataclass(frozen=True, slots=True)
class _Rules:
    queue_name: str
    service: str
    senders: Senders
    logins: Logins
    failed: Callable[[str], BaseModel]

    def __call__(self, msg: Any, /, *, context: Any) -> BaseMiddleware:
        return _Answering(msg, context=context, rules=self)


class _Answering(RuledMiddleware[_Rules]):
    """Judges the asker, has the handler answer, and turns whatever goes wrong into the answer
    that says so; FastStream sends the answer to the question's `reply_to`."""

    async def consume_scope(
        self, call_next: Callable[[Any], Awaitable[Any]], msg: StreamMessage[Any]
    ) -> RabbitResponse:
        rules, raw = self.rules, msg.raw_message
        sender = sender_of(raw.user_id, raw.headers, rules.senders, rules.logins)
        with metrics.timed(rules.queue_name) as record:
            try:
                if refused := sender_refusal(sender, rules.senders, rules.logins):
                    raise InvalidMessage(refused)
                reply = await call_next(msg)
                record("handled")
            except (InvalidMessage, Refused) as never_handled:
                reason = str(never_handled)
                await messaging.dead_letter(
                    msg, rules.queue_name, rules.service, reason, sender.user_id
                )
                log.warning(
                    "dead-lettered a question",
                    extra={**log_fields(msg, rules.queue_name), "reason": reason},
                )
                reply = rules.failed(reason)
                record("dead_lettered")
            except Exception:
                log.exception(
                    "a question was not answered", extra=log_fields(msg, rules.queue_name)
                )
                reply = rules.failed(
                    f"the {rules.service} service failed; see its log (message id {raw.message_id})"
                )
                record("retried")  # by the asker, whose handler fails in turn
        # Not mandatory: RabbitMQ returns a mandatory message sent to a direct reply-to
        # address as unroutable even when it delivers it.
        return RabbitResponse(as_json(reply), mandatory=False, content_type=JSON)


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
    rules = _Rules(
        subscription.queue_name, settings.service_name, senders, Logins.of(settings), failed
    )
    return subscriber(router, subscription, adapter, settings, rules, ack_policy=AckPolicy.ACK)


async def ask(
    question_to: Publication, question: BaseModel, reply: type[Reply], *, seconds: float
) -> Reply:
    """Publish `question` and wait up to `seconds` for its answer; `NoAnswer` if none
    comes, or if the answer is not to this question. (FastStream asks one question at a time
    per broker: questions are rare, and each is answered at once.)"""
    correlation_id = str(uuid.uuid4())
    try:
        message = await question_to.request(
            question, correlation_id=correlation_id, seconds=seconds
        )
    except TimeoutError:
        raise NoAnswer(f"no answer to {question_to.routing_key} within {seconds:g} s") from None
    if message.correlation_id != correlation_id:
        # A late answer to an earlier question that had been given up on.
        raise NoAnswer(f"the answer to {question_to.routing_key} was not to this question")
    return reply.model_validate_json(message.body)
