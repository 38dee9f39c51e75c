"""Messages the orders service consumes, translated into calls on `OrdersService`."""

from __future__ import annotations

from faststream.rabbit import RabbitRouter
from pydantic import TypeAdapter

from services.orders.service import OrdersService
from shared.contracts.webshop import OrderPlaced
from shared.messaging import subscribe_events
from shared.settings import ServiceSettings
from shared.topology import order_placed_subscription


def build_router(service: OrdersService, settings: ServiceSettings) -> RabbitRouter:
    router = RabbitRouter()

    @subscribe_events(
        router, order_placed_subscription("orders"), TypeAdapter(OrderPlaced), settings
    )
    async def on_order_placed(event: OrderPlaced) -> None:
        await service.record_order(event)

    return router
