"""Messages the disclosure service consumes, translated into calls on `DisclosureService`."""

from __future__ import annotations

from typing import Any

from faststream.rabbit import RabbitRouter
from pydantic import TypeAdapter

from services.disclosure.domain import ProviderRefused
from services.disclosure.service import SERVICE, DisclosureService
from shared.commands import Actor, subscribe_commands
from shared.contracts.disclosure_ops import (
    DisclosureCommand,
    ListDisclosures,
    ListHeldDisclosures,
    ReleaseOrder,
)
from shared.contracts.erasure import EraseSubject, ReportSubject
from shared.contracts.providers import (
    AddProvider,
    ChangeProviderStatus,
    IssueProviderCredentials,
    ListProviders,
    ShowProvider,
    UpdateProvider,
)
from shared.contracts.webshop import OrderPlaced
from shared.messaging import CommandRefused, subscribe_events
from shared.rabbitmq_admin import RabbitMQAdminError
from shared.senders import FROM_ERASURE, FROM_WEBSHOP
from shared.settings import ServiceSettings
from shared.topology import (
    erase_subject_subscription,
    ops_subscription,
    order_placed_subscription,
)


def build_router(service: DisclosureService, settings: ServiceSettings) -> RabbitRouter:
    router = RabbitRouter()

    @subscribe_events(
        router,
        order_placed_subscription(SERVICE),
        TypeAdapter(OrderPlaced),
        settings,
        senders=FROM_WEBSHOP,
    )
    async def on_order_placed(event: OrderPlaced) -> None:
        """Sends each provider on the order the data it needs, and only that."""
        await service.disclose_order(event)

    @subscribe_events(
        router,
        erase_subject_subscription(SERVICE),
        TypeAdapter(EraseSubject),
        settings,
        senders=FROM_ERASURE,
    )
    async def on_erase_subject(command: EraseSubject) -> None:
        """Erases the person's disclosures, tells the providers, and reports."""
        await service.erase(command)

    @subscribe_commands(router, ops_subscription(SERVICE), TypeAdapter(DisclosureCommand), settings)
    async def on_command(command: DisclosureCommand, actor: Actor) -> Any:
        """Staff's commands: the providers, held and sent disclosures, a person's report."""
        try:
            match command:
                case AddProvider():
                    return await service.add_provider(command, actor)
                case UpdateProvider():
                    return await service.update_provider(command, actor)
                case ChangeProviderStatus():
                    return await service.change_provider_status(command, actor)
                case ListProviders():
                    return await service.list_providers()
                case ShowProvider(provider_id=provider_id):
                    return await service.show_provider(provider_id)
                case IssueProviderCredentials(provider_id=provider_id):
                    return await service.issue_credentials(provider_id, actor)
                case ListHeldDisclosures():
                    return await service.held_disclosures()
                case ReleaseOrder(order_id=order_id):
                    return await service.release(order_id, actor)
                case ListDisclosures():
                    return await service.sent_disclosures(command)
                case ReportSubject():
                    return await service.report(command, actor)
        except (ProviderRefused, RabbitMQAdminError) as refused:
            raise CommandRefused(str(refused)) from None

    return router
