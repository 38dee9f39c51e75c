"""Request/reply with the services over RabbitMQ, as the `rekisteri` tool does it.

A command is published to the `ops` exchange with the service's name as routing key, persistent
delivery off (a command nobody answers in time is stale) and an expiration equal to the time
the tool waits, so a service that comes back later does not act on a command its operator has
given up on. Replies come back over RabbitMQ's direct reply-to. The AMQP `user_id` property
names the operator; RabbitMQ refuses a message whose `user_id` is not the logged-in user.

A command whose answer can be large (an export) is sent with `stream` instead of `request`:
its answer comes back as numbered pages (`OpsPage`), see `shared.commands.subscribe_streams`.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Self

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from aio_pika.exceptions import ChannelNotFoundEntity, DeliveryError
from aiormq.exceptions import ChannelAccessRefused
from pydantic import BaseModel
from yarl import URL

from shared.contracts.ops import OpsPage, OpsReply
from shared.topology_names import DIRECT_REPLY_TO, OPS_EXCHANGE, ops_stream_routing_key
from shared.urls import mask_password


class OpsError(Exception):
    """A command failed; the text is for the operator."""


class OpsClient:
    def __init__(self, rabbitmq_url: str, timeout: float) -> None:
        self._url = rabbitmq_url
        self._timeout = timeout
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._inboxes: dict[str, asyncio.Queue[bytes]] = {}

    @property
    def actor(self) -> str:
        return URL(self._url).user or "guest"

    async def __aenter__(self) -> Self:
        try:
            self._connection = await aio_pika.connect_robust(self._url, fail_fast=True)
        except (OSError, aio_pika.exceptions.AMQPConnectionError) as error:
            raise OpsError(
                f"cannot reach RabbitMQ at {mask_password(self._url)}: {error}"
            ) from None
        self._channel = await self._connection.channel(on_return_raises=True)
        replies = await self._channel.get_queue(DIRECT_REPLY_TO, ensure=False)
        await replies.consume(self._on_reply, no_ack=True)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def request(self, service: str, command: BaseModel) -> Any:
        """Send one command and return the result of its reply, or raise `OpsError`."""
        async with self._conversation(service, service, command) as next_reply:
            outcome = OpsReply.model_validate_json(await next_reply())
        if not outcome.ok:
            raise OpsError(outcome.error or f"the {service} service refused the command")
        return outcome.result

    async def stream(self, service: str, command: BaseModel) -> AsyncIterator[OpsPage]:
        """Send a command answered in pages and yield each page as it arrives, in order.

        The first page carries the answer's `total`. Raises `OpsError` when the service reports
        a failure, or when no page comes within the timeout: the pages yielded before are then
        an incomplete answer.
        """
        routing_key = ops_stream_routing_key(service)
        async with self._conversation(service, routing_key, command) as next_reply:
            for sequence in itertools.count():
                page = OpsPage.model_validate_json(await next_reply())
                if page.sequence != sequence:
                    raise OpsError(
                        f"the answer from the {service} service is incomplete: page "
                        f"{page.sequence} came when page {sequence} was due"
                    )
                if page.error is not None:
                    raise OpsError(page.error)
                yield page
                if page.final:
                    return

    @asynccontextmanager
    async def _conversation(
        self, service: str, routing_key: str, command: BaseModel
    ) -> AsyncIterator[Callable[[], Awaitable[bytes]]]:
        """Publish `command` and give a function that waits for each next reply to it."""
        assert self._channel is not None, "use OpsClient as an async context manager"
        correlation_id = str(uuid.uuid4())
        inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._inboxes[correlation_id] = inbox
        replies = 0

        async def next_reply() -> bytes:
            nonlocal replies
            try:
                body = await asyncio.wait_for(inbox.get(), self._timeout)
            except TimeoutError:
                if replies:
                    raise OpsError(
                        f"the {service} service stopped answering: nothing more came within "
                        f"{self._timeout:g} s, so the answer is incomplete"
                    ) from None
                raise OpsError(
                    f"no reply from the {service} service within {self._timeout:g} s; "
                    "is it running?"
                ) from None
            replies += 1
            return body

        exchange = await self._channel.get_exchange(OPS_EXCHANGE, ensure=False)
        message = aio_pika.Message(
            command.model_dump_json().encode(),
            content_type="application/json",
            correlation_id=correlation_id,
            reply_to=DIRECT_REPLY_TO,
            user_id=self.actor,
            expiration=self._timeout,
            delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
        )
        try:
            await exchange.publish(message, routing_key=routing_key, mandatory=True)
            yield next_reply
        except (DeliveryError, ChannelNotFoundEntity):
            raise OpsError(
                f"the {service} service has never run on this broker: nothing takes its commands"
            ) from None
        except ChannelAccessRefused:
            raise OpsError(
                f"user {self.actor} may not send commands to the {service} service"
            ) from None
        finally:
            self._inboxes.pop(correlation_id, None)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        # No await before the hand-over: replies reach their inbox in the order they arrived.
        inbox = self._inboxes.get(message.correlation_id or "")
        if inbox is not None:
            inbox.put_nowait(message.body)
