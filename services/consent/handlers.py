"""Messages the consent service consumes, translated into calls on `ConsentService`."""

from __future__ import annotations

from faststream.rabbit import RabbitRouter
from pydantic import TypeAdapter

from services.consent.service import ConsentService
from shared.contracts.webshop import OrderPlaced
from shared.messaging import subscribe_events
from shared.settings import ServiceSettings
from shared.topology import order_placed_subscription


def build_router(service: ConsentService, settings: ServiceSettings) -> RabbitRouter:
    router = RabbitRouter()
    on_order = order_placed_subscription("consent")

    @subscribe_events(router, on_order, TypeAdapter(OrderPlaced), settings)
    async def on_order_placed(event: OrderPlaced) -> None:
        await service.record_checkout(event)

    return router
