"""Request/reply with the services over RabbitMQ, as the `rekisteri` tool does it.

A command is published to the `ops` exchange with the service's name as routing key, persistent
delivery off (a command nobody answers in time is stale) and an expiration equal to the time
the tool waits, so a service that comes back later does not act on a command its operator has
given up on. Replies come back over RabbitMQ's direct reply-to. The AMQP `user_id` property
names the operator; RabbitMQ refuses a message whose `user_id` is not the logged-in user.
"""

from __future__ import annotations

import asyncio
import uuid
from types import TracebackType
from typing import Any, Self

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from aio_pika.exceptions import ChannelNotFoundEntity, DeliveryError
from aiormq.exceptions import ChannelAccessRefused
from pydantic import BaseModel
from yarl import URL

from shared.contracts.ops import OpsReply
from shared.topology import DIRECT_REPLY_TO, OPS_EXCHANGE


class OpsError(Exception):
    """A command failed; the text is for the operator."""


class OpsClient:
    def __init__(self, rabbitmq_url: str, timeout: float) -> None:
        self._url = rabbitmq_url
        self._timeout = timeout
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._pending: dict[str, asyncio.Future[OpsReply]] = {}

    @property
    def actor(self) -> str:
        return URL(self._url).user or "guest"

    async def __aenter__(self) -> Self:
        try:
            self._connection = await aio_pika.connect_robust(self._url, fail_fast=True)
        except (OSError, aio_pika.exceptions.AMQPConnectionError) as error:
            raise OpsError(f"cannot reach RabbitMQ at {_safe_url(self._url)}: {error}") from None
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
        assert self._channel is not None, "use OpsClient as an async context manager"
        correlation_id = str(uuid.uuid4())
        reply: asyncio.Future[OpsReply] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = reply
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
            await exchange.publish(message, routing_key=service, mandatory=True)
            outcome = await asyncio.wait_for(reply, self._timeout)
        except (DeliveryError, ChannelNotFoundEntity):
            raise OpsError(
                f"the {service} service has never run on this broker: nothing takes its commands"
            ) from None
        except ChannelAccessRefused:
            raise OpsError(
                f"user {self.actor} may not send commands to the {service} service"
            ) from None
        except TimeoutError:
            raise OpsError(
                f"no reply from the {service} service within {self._timeout:g} s; is it running?"
            ) from None
        finally:
            self._pending.pop(correlation_id, None)
        if not outcome.ok:
            raise OpsError(outcome.error or f"the {service} service refused the command")
        return outcome.result

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        waiting = self._pending.get(message.correlation_id or "")
        if waiting is not None and not waiting.done():
            waiting.set_result(OpsReply.model_validate_json(message.body))


def _safe_url(url: str) -> str:
    parsed = URL(url)
    return str(parsed.with_password("***")) if parsed.password else url
