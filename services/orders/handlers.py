"""Messages the orders service consumes, translated into calls on `OrdersService`."""

from __future__ import annotations

from typing import Any

from faststream.rabbit import RabbitRouter

from services.orders.service import SERVICE, OrdersService
from shared.commands import Actor
from shared.contracts.erasure import ReportSubject
from shared.contracts.orders import LookupPerson, OrdersCommand, PersonOnOrder
from shared.contracts.webshop import OrderPlaced
from shared.senders import FROM_ERASURE, FROM_WEBSHOP
from shared.settings import ServiceSettings
from shared.subscriptions import Subscriptions
from shared.topology import order_placed_subscription, person_lookup_subscription


def build_router(service: OrdersService, settings: ServiceSettings) -> RabbitRouter:
    on = Subscriptions(settings)

    @on.events(order_placed_subscription(SERVICE), senders=FROM_WEBSHOP)
    async def on_order_placed(event: OrderPlaced) -> None:
        """Keeps the order, and the buyer's and the recipient's profiles."""
        await service.record_order(event)

    on.erasure(
        service,
        "Erases the person's orders and profiles, keeping what the law requires, and reports.",
    )

    @on.questions(
        person_lookup_subscription(),
        senders=FROM_ERASURE,
        failed=lambda error: PersonOnOrder(error=error),
    )
    async def on_person_lookup(question: LookupPerson) -> PersonOnOrder:
        """Answers who is on an order, by subject hash, to the erasure service only."""
        return await service.person_on_order(question.order_id, question.role)

    @on.commands()
    async def on_command(command: OrdersCommand, actor: Actor) -> Any:
        """Staff's commands: a person's report, and who is on an order."""
        match command:
            case ReportSubject():
                return await service.report(command, actor)
            case LookupPerson(order_id=order_id, role=role):
                return await service.look_up(order_id, role)

    return on.router
