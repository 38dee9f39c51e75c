"""Messages the orders service consumes, translated into calls on `OrdersService`."""

from __future__ import annotations

from typing import Any

from faststream.rabbit import RabbitRouter
from pydantic import TypeAdapter

from services.orders.service import SERVICE, OrdersService
from shared.contracts.erasure import EraseSubject
from shared.contracts.orders import OrdersCommand
from shared.contracts.webshop import OrderPlaced
from shared.messaging import subscribe_commands, subscribe_events
from shared.settings import ServiceSettings
from shared.topology import erase_subject_subscription, ops_subscription, order_placed_subscription


def build_router(service: OrdersService, settings: ServiceSettings) -> RabbitRouter:
    router = RabbitRouter()

    @subscribe_events(
        router, order_placed_subscription(SERVICE), TypeAdapter(OrderPlaced), settings
    )
    async def on_order_placed(event: OrderPlaced) -> None:
        await service.record_order(event)

    @subscribe_events(
        router, erase_subject_subscription(SERVICE), TypeAdapter(EraseSubject), settings
    )
    async def on_erase_subject(command: EraseSubject) -> None:
        await service.erase(command)

    @subscribe_commands(router, ops_subscription(SERVICE), TypeAdapter(OrdersCommand), settings)
    async def on_command(command: OrdersCommand, actor: str) -> Any:
        return await service.report(command.email, actor)

    return router
