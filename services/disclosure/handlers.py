"""Messages the disclosure service consumes, translated into calls on `DisclosureService`."""

from __future__ import annotations

from typing import Any

from faststream.rabbit import RabbitRouter

from services.disclosure.service import SERVICE, DisclosureService
from shared.commands import Actor
from shared.contracts import disclosure_ops, providers
from shared.contracts.erasure import ReportSubject
from shared.contracts.webshop import OrderPlaced
from shared.senders import FROM_WEBSHOP
from shared.settings import ServiceSettings
from shared.subscriptions import Subscriptions
from shared.topology import order_placed_subscription


def build_router(service: DisclosureService, settings: ServiceSettings) -> RabbitRouter:
    on = Subscriptions(settings)

    @on.events(order_placed_subscription(SERVICE), senders=FROM_WEBSHOP)
    async def on_order_placed(event: OrderPlaced) -> None:
        """Sends each provider on the order the data it needs, and only that."""
        await service.disclose_order(event)

    on.erasure(service, "Erases the person's disclosures, tells the providers, and reports.")

    @on.commands()
    async def on_command(command: disclosure_ops.DisclosureCommand, actor: Actor) -> Any:
        """Staff's commands: the providers, held and sent disclosures, a person's report."""
        match command:
            case providers.AddProvider():
                return await service.add_provider(command, actor)
            case providers.UpdateProvider():
                return await service.update_provider(command, actor)
            case providers.ChangeProviderStatus():
                return await service.change_provider_status(command, actor)
            case providers.ListProviders():
                return await service.list_providers()
            case providers.ShowProvider(provider_id=provider_id):
                return await service.show_provider(provider_id)
            case providers.IssueProviderCredentials(provider_id=provider_id):
                return await service.issue_credentials(provider_id, actor)
            case disclosure_ops.ListHeldDisclosures():
                return await service.held_disclosures()
            case disclosure_ops.ReleaseOrder(order_id=order_id):
                return await service.release(order_id, actor)
            case disclosure_ops.ListDisclosures():
                return await service.sent_disclosures(command)
            case ReportSubject():
                return await service.report(command, actor)

    return on.router
