"""The `rekisteri` tool's commands to a service: carried out for staff only, audited, answered.

A service registers `dispatch(command, actor)` for its commands with `subscribe_commands` (one
reply each), or, when the answer may be large, with `subscribe_streams` (a stream of pages).
Both go through the same FastStream middleware, which keeps these rules once for both:

- who sent it first: the AMQP `user_id` property, which RabbitMQ checks against the sender's
  login; a command without one, or from a user who is not staff (shared/senders.py), is refused
  unread;
- the body is validated strictly as the service's command contract (shared/messaging.py
  `strict_decoder`); an invalid command is answered with the reason;
- a command the service refuses (`shared.errors.Refused`, raised by its use cases) is answered
  with the refusal's text; any other failure with a pointer to the service's log;
- every command, carried out or not, leaves an entry in the service's audit log
  (shared/audit.py) before any answer; an answer whose entry could not be written is withheld;
- commands are not retried: the operator sees the failure and decides.

The handler takes the command and the `Actor`, the staff user who sent it.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, get_type_hints

from faststream import AckPolicy, Context
from faststream.message import StreamMessage
from faststream.middlewares import BaseMiddleware
from faststream.rabbit import RabbitBroker, RabbitResponse, RabbitRouter
from pydantic import GetCoreSchemaHandler, TypeAdapter
from pydantic_core import CoreSchema, core_schema

from shared import metrics
from shared.audit import AUDIT_LOG, AuditLog
from shared.contracts.ops import OpsPage, OpsReply
from shared.contracts.runtime import AuditOutcome
from shared.errors import Refused
from shared.messaging import (
    JSON,
    LOGIN,
    InvalidMessage,
    RuledMiddleware,
    as_json,
    log_fields,
    subscriber,
)
from shared.senders import GUEST, Logins, command_refusal
from shared.settings import ServiceSettings
from shared.topology import Subscription

log = logging.getLogger(__name__)

Actor = Annotated[str, Context("message.raw_message.user_id")]
"""The staff user who sent the command (the middleware refused it already from anyone else).
Resolved by FastStream's context for each command: commands are few, events are not."""

Dispatch = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Stream:
    """An answer sent in pages: `total` rows in all, then the rows, one list per page.

    `pages` should read its rows a page at a time (a cursor over an index), so that neither the
    service nor the requester ever holds more than a page.
    """

    total: int
    pages: AsyncIterable[list[Any]]

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        # FastStream checks what a handler returns against its annotation; a stream is itself.
        return core_schema.is_instance_schema(cls)


StreamDispatch = Callable[..., Awaitable[Stream]]


@dataclass(frozen=True, slots=True)
class _Rules:
    queue_name: str
    service: str
    logins: Logins
    paged: bool

    def __call__(self, msg: Any, /, *, context: Any) -> BaseMiddleware:
        return (_Pages if self.paged else _Reply)(msg, context=context, rules=self)


@dataclass
class _Done:
    """What became of one command: the command as read (None if it could not be), the
    handler's result, or why there is none."""

    command: Any = None
    result: Any = None
    failure: Exception | None = None

    @property
    def outcome(self) -> AuditOutcome:
        if self.failure is None:
            return "ok"
        if isinstance(self.failure, InvalidMessage):
            return "invalid"
        return "refused" if isinstance(self.failure, Refused) else "failed"


class _Answering(RuledMiddleware[_Rules]):
    """Refuse, read, carry out and audit one command; the subclasses answer it."""

    async def carry_out(
        self, call_next: Callable[[Any], Awaitable[Any]], message: StreamMessage[Any]
    ) -> _Done:
        done = _Done()
        try:
            if refused := command_refusal(message.raw_message.user_id, self.rules.logins):
                raise Refused(refused)
            done.command = await message.decode()
            done.result = await call_next(message)
        except Exception as error:
            done.failure = error
        return done

    async def audit(self, message: StreamMessage[Any], done: _Done, count: int | None) -> bool:
        """Write the command's audit entry; False (logged) if it could not be written."""
        raw = message.raw_message
        audit: AuditLog = self.context.get(AUDIT_LOG)
        try:
            await audit.record(
                actor=raw.user_id or None,
                command=done.command,
                body=message.body,
                outcome=done.outcome,
                count=count,
                message_id=raw.message_id,
            )
        except Exception:
            log.exception("audit entry not written", extra=log_fields(message, self.queue))
            return False
        return True

    def explain(self, error: Exception, message: StreamMessage[Any]) -> str:
        """What the operator is told about a failed command; the unexpected is logged."""
        if isinstance(error, InvalidMessage):
            return f"invalid command: {error.reason}"
        if isinstance(error, Refused):
            return str(error)
        log.error("command failed", exc_info=error, extra=log_fields(message, self.queue))
        return (
            f"the {self.rules.service} service failed; see its log "
            f"(message id {message.raw_message.message_id})"
        )

    def counted(self, ok: bool) -> None:
        metrics.COMMANDS.labels(self.queue, str(ok).lower()).inc()

    @property
    def queue(self) -> str:
        return self.rules.queue_name


class _Reply(_Answering):
    """One `OpsReply`, which FastStream sends to the command's `reply_to`."""

    async def consume_scope(
        self, call_next: Callable[[Any], Awaitable[Any]], msg: StreamMessage[Any]
    ) -> RabbitResponse:
        done = await self.carry_out(call_next, msg)
        if done.failure is None:
            reply = OpsReply(ok=True, result=done.result)
        else:
            reply = OpsReply(ok=False, error=self.explain(done.failure, msg))
        count = len(done.result) if isinstance(done.result, list) else None
        if not await self.audit(msg, done, count):
            reply = OpsReply(
                ok=False,
                error=f"the {self.rules.service} service could not write its audit log, so it "
                "withholds the answer; the command may have taken effect",
            )
        self.counted(reply.ok)
        # Not mandatory: RabbitMQ returns a mandatory message sent to a direct reply-to
        # address as unroutable even when it delivers it.
        return RabbitResponse(as_json(reply), mandatory=False, content_type=JSON)


class _Pages(_Answering):
    """`OpsPage`s to the command's `reply_to`, each confirmed before the next is read."""

    async def consume_scope(
        self, call_next: Callable[[Any], Awaitable[Any]], msg: StreamMessage[Any]
    ) -> None:
        done = await self.carry_out(call_next, msg)
        stream = done.result if isinstance(done.result, Stream) else None
        pages = _PageSender(self.context.get("broker"), msg)
        # Exports are audited before a single row leaves the service.
        if not await self.audit(msg, done, stream.total if stream is not None else None):
            await pages.send(
                [],
                final=True,
                error=f"the {self.rules.service} service could not write its audit log, so it "
                "withholds the answer",
            )
            self.counted(False)
            return
        try:
            if done.failure is not None:
                raise done.failure
            assert stream is not None
            pages.total = stream.total
            async for rows in stream.pages:
                await pages.send(rows)
            await pages.send([], final=True)
        except Exception as error:
            await pages.send([], final=True, error=self.explain(error, msg))
            self.counted(False)
            return
        self.counted(True)


class _PageSender:
    """Numbers the pages of one answer and sends each to the requester, confirmed."""

    def __init__(self, broker: RabbitBroker, message: StreamMessage[Any]) -> None:
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
        # Not persistent, and not mandatory, like every reply (see `_Reply`).
        await self._broker.publish(
            as_json(page),
            exchange="",
            routing_key=self._reply_to,
            correlation_id=self._correlation_id,
            content_type=JSON,
            persist=False,
            mandatory=False,
            user_id=self._broker.context.get(LOGIN, GUEST),
        )
        self._sequence += 1


def _check_signature(dispatch: Dispatch) -> None:
    """FastStream passes the command as the one parameter it does not resolve from its context:
    an actor annotated `str` would be taken for a second part of the body, and every command
    would fail. Said at start, not at the first command."""
    hints = get_type_hints(dispatch, include_extras=True)
    parameters = list(inspect.signature(dispatch).parameters)
    if len(parameters) != 2 or hints.get(parameters[1]) != Actor:
        raise TypeError(
            f"{dispatch.__qualname__} must be `(command: <contract>, actor: Actor)`, with "
            "`Actor` from shared.commands"
        )


def _subscribe(
    router: RabbitRouter,
    subscription: Subscription,
    adapter: TypeAdapter[Any],
    settings: ServiceSettings,
    *,
    paged: bool,
) -> Callable[[Dispatch], Dispatch]:
    rules = _Rules(subscription.queue_name, settings.service_name, Logins.of(settings), paged)
    register = subscriber(
        router,
        subscription,
        adapter,
        settings,
        rules,
        # A paged answer cannot be resumed, so one cut short by a crash is not started
        # again for a requester that has given up (it sees the pages stop).
        ack_policy=AckPolicy.ACK_FIRST if paged else AckPolicy.ACK,
        no_reply=paged,
    )

    def checked(dispatch: Dispatch) -> Dispatch:
        _check_signature(dispatch)
        return register(dispatch)

    return checked


def subscribe_commands(
    router: RabbitRouter,
    subscription: Subscription,
    adapter: TypeAdapter[Any],
    settings: ServiceSettings,
) -> Callable[[Dispatch], Dispatch]:
    """Register `dispatch(command, actor: Actor)` for the `rekisteri` tool's requests.

    Every request gets exactly one reply (`OpsReply`, its `result` what `dispatch` returns),
    which FastStream sends to its `reply_to`; then the request is acknowledged.
    """
    return _subscribe(router, subscription, adapter, settings, paged=False)


def subscribe_streams(
    router: RabbitRouter,
    subscription: Subscription,
    adapter: TypeAdapter[Any],
    settings: ServiceSettings,
) -> Callable[[StreamDispatch], StreamDispatch]:
    """Register `dispatch(command, actor: Actor) -> Stream` for commands answered in pages.

    For answers that can grow with the register (an export): instead of one `OpsReply`, the
    requester's `reply_to` gets `OpsPage`s with the request's correlation id, numbered from 0;
    the first carries the `total`, the last is `final`. An invalid or refused command, or a
    failure midway, ends the answer with a final page carrying `error`. Each page is confirmed
    by the broker before the next is read, so memory does not grow with the answer. Pages for
    a requester that has stopped listening are dropped by RabbitMQ.

    The request is acknowledged on arrival. The client side is
    `rekisteri.client.OpsClient.stream`.
    """
    return _subscribe(router, subscription, adapter, settings, paged=True)
