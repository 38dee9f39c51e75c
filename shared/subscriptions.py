"""How a service's handlers.py declares what it consumes: one `Subscriptions` per service.

Each handler is one function under a decorator naming its queue (and, for messages from other
services, who may send them). Its first parameter's annotation is the message's contract, read
strictly from the body, and its docstring describes the queue in the AsyncAPI document: the
contract is said once, in the annotation. What each kind of subscription does with a message
is its own module's: events (shared/messaging.py), questions (shared/requests.py), staff
commands and streams (shared/commands.py).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, get_type_hints

from faststream.rabbit import RabbitRouter
from pydantic import BaseModel, TypeAdapter

from shared.commands import subscribe_commands, subscribe_streams
from shared.contracts.erasure import EraseSubject
from shared.messaging import subscribe_events
from shared.requests import subscribe_requests
from shared.senders import FROM_ERASURE, Senders
from shared.settings import ServiceSettings
from shared.topology import (
    Subscription,
    erase_subject_subscription,
    ops_stream_subscription,
    ops_subscription,
)

if TYPE_CHECKING:
    from shared.data_holder import DataHolder

Handler = TypeVar("Handler", bound=Callable[..., Awaitable[Any]])


def contract_of(handler: Callable[..., Any]) -> TypeAdapter[Any]:
    """The annotation of the handler's first parameter: what FastStream passes it."""
    first = next(iter(inspect.signature(handler).parameters))
    return TypeAdapter(get_type_hints(handler, include_extras=True)[first])


class Subscriptions:
    """A service's subscriptions, on `router`, each read and ruled by its kind's module."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.router = RabbitRouter()
        self._settings = settings

    def events(
        self, subscription: Subscription, *, senders: Senders
    ) -> Callable[[Handler], Handler]:
        """`handler(event)`, for events from `senders` (shared/messaging.py)."""
        return self._declare(subscribe_events, subscription, senders=senders)

    def erasure(self, participant: DataHolder, description: str) -> None:
        """A participant's `erase.subject` queue: each of the erasure service's requests to
        erase a person goes to `participant.erase`; `description` says what it erases."""

        async def on_erase_subject(command: EraseSubject) -> None:
            await participant.erase(command)

        subscribe_events(
            self.router,
            erase_subject_subscription(self._settings.service_name),
            TypeAdapter(EraseSubject),
            self._settings,
            senders=FROM_ERASURE,
            description=description,
        )(on_erase_subject)

    def questions(
        self, subscription: Subscription, *, senders: Senders, failed: Callable[[str], BaseModel]
    ) -> Callable[[Handler], Handler]:
        """`answer(question) -> reply`, for questions from `senders`; `failed(error)` is the
        reply that says a question was not answered (shared/requests.py)."""
        return self._declare(subscribe_requests, subscription, senders=senders, failed=failed)

    def commands(self) -> Callable[[Handler], Handler]:
        """`dispatch(command, actor: Actor)`, for staff's commands to the service (its
        `ops.<service>` queue), one reply each (shared/commands.py)."""
        return self._declare(subscribe_commands, ops_subscription(self._settings.service_name))

    def streams(self) -> Callable[[Handler], Handler]:
        """`dispatch(command, actor: Actor) -> Stream`, for staff's commands answered in pages
        (its `ops.<service>.stream` queue; shared/commands.py)."""
        return self._declare(
            subscribe_streams, ops_stream_subscription(self._settings.service_name)
        )

    def _declare(
        self,
        subscribe: Callable[..., Callable[[Any], Any]],
        subscription: Subscription,
        **rules: Any,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            subscribe(self.router, subscription, contract_of(handler), self._settings, **rules)(
                handler
            )
            return handler

        return register
