"""Messages the consent service consumes, translated into calls on `ConsentService`."""

from __future__ import annotations

from typing import Any

from faststream.rabbit import RabbitRouter
from pydantic import TypeAdapter

from services.consent.service import SERVICE, ConsentService
from shared.commands import Actor, Stream, subscribe_commands, subscribe_streams
from shared.contracts.consent import ConsentCommand, ConsentStream, ExportAudience, ShowConsent
from shared.contracts.erasure import EraseSubject, ReportSubject
from shared.contracts.webshop import ConsentUpdated, MarketingObjection, OrderPlaced
from shared.messaging import subscribe_events
from shared.senders import FROM_ERASURE, FROM_WEBSHOP
from shared.settings import ServiceSettings
from shared.topology import (
    CONSENT_UPDATED,
    MARKETING_OBJECTION,
    ORDER_PLACED,
    erase_subject_subscription,
    ops_stream_subscription,
    ops_subscription,
    webshop_subscription,
)


def build_router(service: ConsentService, settings: ServiceSettings) -> RabbitRouter:
    router = RabbitRouter()

    @subscribe_events(
        router,
        webshop_subscription(SERVICE, ORDER_PLACED),
        TypeAdapter(OrderPlaced),
        settings,
        senders=FROM_WEBSHOP,
    )
    async def on_order_placed(event: OrderPlaced) -> None:
        """Records the permissions the buyer gave at checkout, and their contact details."""
        await service.record_checkout(event)

    @subscribe_events(
        router,
        webshop_subscription(SERVICE, CONSENT_UPDATED),
        TypeAdapter(ConsentUpdated),
        settings,
        senders=FROM_WEBSHOP,
    )
    async def on_consent_updated(event: ConsentUpdated) -> None:
        """Records a change of permissions; an event older than what is recorded changes
        nothing."""
        await service.record_update(event)

    @subscribe_events(
        router,
        webshop_subscription(SERVICE, MARKETING_OBJECTION),
        TypeAdapter(MarketingObjection),
        settings,
        senders=FROM_WEBSHOP,
    )
    async def on_marketing_objection(event: MarketingObjection) -> None:
        """Records an objection to direct marketing, or its withdrawal, for anyone."""
        await service.record_objection(event)

    @subscribe_events(
        router,
        erase_subject_subscription(SERVICE),
        TypeAdapter(EraseSubject),
        settings,
        senders=FROM_ERASURE,
    )
    async def on_erase_subject(command: EraseSubject) -> None:
        """Erases the person's consents and contact details, and reports."""
        await service.erase(command)

    @subscribe_commands(router, ops_subscription(SERVICE), TypeAdapter(ConsentCommand), settings)
    async def on_command(command: ConsentCommand, actor: Actor) -> Any:
        """Staff's commands: a person's consents, and a person's report."""
        match command:
            case ShowConsent(email=email):
                return await service.show(email, actor)
            case ReportSubject():
                return await service.report(command, actor)

    @subscribe_streams(
        router, ops_stream_subscription(SERVICE), TypeAdapter(ConsentStream), settings
    )
    async def on_stream(command: ConsentStream, actor: Actor) -> Stream:
        """Staff's exports, answered in pages: who may be contacted for a purpose now."""
        match command:
            case ExportAudience(purpose=purpose):
                return await service.audience(purpose, actor)

    return router
