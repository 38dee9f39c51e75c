"""Messages the disclosure service consumes, translated into calls on `DisclosureService`."""

from __future__ import annotations

from typing import Any

from faststream.rabbit import RabbitRouter
from pydantic import TypeAdapter

from services.disclosure.domain import ProviderRefused
from services.disclosure.service import DisclosureService
from shared.contracts.providers import AddProvider, DisclosureCommand, ListProviders
from shared.contracts.webshop import OrderPlaced
from shared.messaging import CommandRefused, subscribe_commands, subscribe_events
from shared.settings import ServiceSettings
from shared.topology import ops_subscription, order_placed_subscription


def build_router(service: DisclosureService, settings: ServiceSettings) -> RabbitRouter:
    router = RabbitRouter()

    @subscribe_events(
        router, order_placed_subscription("disclosure"), TypeAdapter(OrderPlaced), settings
    )
    async def on_order_placed(event: OrderPlaced) -> None:
        await service.disclose_order(event)

    @subscribe_commands(
        router, ops_subscription("disclosure"), TypeAdapter(DisclosureCommand), settings
    )
    async def on_command(command: DisclosureCommand, actor: str) -> Any:
        try:
            match command:
                case AddProvider():
                    return await service.add_provider(command, actor)
                case ListProviders():
                    return await service.list_providers()
        except ProviderRefused as refused:
            raise CommandRefused(str(refused)) from None

    return router
