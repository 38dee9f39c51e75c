"""Messages the orders service consumes, translated into calls on `OrdersService`."""

from __future__ import annotations

from typing import Any

from faststream.rabbit import RabbitRouter
from pydantic import TypeAdapter

from services.orders.service import SERVICE, OrdersService
from shared.commands import Actor, subscribe_commands
from shared.contracts.erasure import EraseSubject, ReportSubject
from shared.contracts.orders import (
    LookupPerson,
    OrdersCommand,
    PersonOnOrder,
    missing_person,
)
from shared.contracts.webshop import OrderPlaced
from shared.messaging import CommandRefused, subscribe_events
from shared.requests import subscribe_requests
from shared.senders import FROM_ERASURE, FROM_WEBSHOP
from shared.settings import ServiceSettings
from shared.topology import (
    erase_subject_subscription,
    ops_subscription,
    order_placed_subscription,
    person_lookup_subscription,
)


def build_router(service: OrdersService, settings: ServiceSettings) -> RabbitRouter:
    router = RabbitRouter()

    @subscribe_events(
        router,
        order_placed_subscription(SERVICE),
        TypeAdapter(OrderPlaced),
        settings,
        senders=FROM_WEBSHOP,
    )
    async def on_order_placed(event: OrderPlaced) -> None:
        """Keeps the order, and the buyer's and the recipient's profiles."""
        await service.record_order(event)

    @subscribe_events(
        router,
        erase_subject_subscription(SERVICE),
        TypeAdapter(EraseSubject),
        settings,
        senders=FROM_ERASURE,
    )
    async def on_erase_subject(command: EraseSubject) -> None:
        """Erases the person's orders and profiles, keeping what the law requires, and reports."""
        await service.erase(command)

    @subscribe_requests(
        router,
        person_lookup_subscription(),
        TypeAdapter(LookupPerson),
        settings,
        senders=FROM_ERASURE,
        failed=lambda error: PersonOnOrder(error=error),
    )
    async def on_person_lookup(question: LookupPerson) -> PersonOnOrder:
        """Answers who is on an order, by subject hash, to the erasure service only."""
        return await service.person_on_order(question.order_id, question.role)

    @subscribe_commands(router, ops_subscription(SERVICE), TypeAdapter(OrdersCommand), settings)
    async def on_command(command: OrdersCommand, actor: Actor) -> Any:
        """Staff's commands: a person's report, and who is on an order."""
        match command:
            case ReportSubject():
                return await service.report(command, actor)
            case LookupPerson(order_id=order_id, role=role):
                found = await service.person_on_order(order_id, role)
                if found.missing is not None:
                    raise CommandRefused(missing_person(order_id, role, found.missing))
                return {"order_id": order_id, "role": role, "subject": found.subject}

    return router
