"""Messages the consent service consumes, translated into calls on `ConsentService`."""

from __future__ import annotations

from typing import Any

from faststream.rabbit import RabbitRouter

from services.consent.service import SERVICE, ConsentService
from shared.commands import Actor, Stream
from shared.contracts.consent import ConsentCommand, ConsentStream, ExportAudience, ShowConsent
from shared.contracts.erasure import ReportSubject
from shared.contracts.webshop import ConsentUpdated, MarketingObjection, OrderPlaced
from shared.senders import FROM_WEBSHOP
from shared.settings import ServiceSettings
from shared.subscriptions import Subscriptions
from shared.topology import CONSENT_UPDATED, MARKETING_OBJECTION, ORDER_PLACED, webshop_subscription


def build_router(service: ConsentService, settings: ServiceSettings) -> RabbitRouter:
    on = Subscriptions(settings)

    @on.events(webshop_subscription(SERVICE, ORDER_PLACED), senders=FROM_WEBSHOP)
    async def on_order_placed(event: OrderPlaced) -> None:
        """Records the permissions the buyer gave at checkout, and their contact details."""
        await service.record_checkout(event)

    @on.events(webshop_subscription(SERVICE, CONSENT_UPDATED), senders=FROM_WEBSHOP)
    async def on_consent_updated(event: ConsentUpdated) -> None:
        """Records a change of permissions; an event older than what is recorded changes
        nothing."""
        await service.record_update(event)

    @on.events(webshop_subscription(SERVICE, MARKETING_OBJECTION), senders=FROM_WEBSHOP)
    async def on_marketing_objection(event: MarketingObjection) -> None:
        """Records an objection to direct marketing, or its withdrawal, for anyone."""
        await service.record_objection(event)

    on.erasure(service, "Erases the person's consents and contact details, and reports.")

    @on.commands()
    async def on_command(command: ConsentCommand, actor: Actor) -> Any:
        """Staff's commands: a person's consents, and a person's report."""
        match command:
            case ShowConsent(email=email):
                return await service.show(email, actor)
            case ReportSubject():
                return await service.report(command, actor)

    @on.streams()
    async def on_stream(command: ConsentStream, actor: Actor) -> Stream:
        """Staff's exports, answered in pages: who may be contacted for a purpose now."""
        match command:
            case ExportAudience(purpose=purpose):
                return await service.audience(purpose, actor)

    return on.router
