"""Messages the erasure service consumes, translated into calls on `ErasureService`."""

from __future__ import annotations

from typing import Any

from faststream.rabbit import RabbitRouter
from pydantic import TypeAdapter

from services.erasure.service import ErasureService
from services.erasure.settings import ErasureSettings
from shared.commands import Actor, subscribe_commands
from shared.contracts.erasure import (
    ErasureCommand,
    ErasureReported,
    ListErasureRequests,
    ReportSubject,
    RequestErasure,
    ShowErasureRequest,
)
from shared.contracts.webshop import ErasureRequested
from shared.messaging import subscribe_events
from shared.senders import FROM_THE_SERVICE_IT_NAMES, FROM_WEBSHOP
from shared.settings import ServiceSettings
from shared.topology import (
    erasure_reported_subscription,
    erasure_requested_subscription,
    ops_subscription,
)


def build_router(service: ErasureService, settings: ServiceSettings) -> RabbitRouter:
    router = RabbitRouter()

    @subscribe_events(
        router,
        erasure_requested_subscription(),
        TypeAdapter(ErasureRequested),
        settings,
        senders=FROM_WEBSHOP,
    )
    async def on_erasure_requested(event: ErasureRequested) -> None:
        """Opens an erasure request and asks every service holding data to erase the person."""
        await service.request_from_webshop(event)

    @subscribe_events(
        router,
        erasure_reported_subscription(),
        TypeAdapter(ErasureReported),
        settings,
        senders=FROM_THE_SERVICE_IT_NAMES,
    )
    async def on_erasure_reported(report: ErasureReported) -> None:
        """Records a service's report; the request is complete when all have reported."""
        await service.record_report(report)

    @subscribe_commands(
        router,
        ops_subscription(ErasureSettings.service_name),
        TypeAdapter(ErasureCommand),
        settings,
    )
    async def on_command(command: ErasureCommand, actor: Actor) -> Any:
        """Staff's commands: erasure requests, and access to a person's data."""
        match command:
            case RequestErasure():
                return await service.request_from_staff(command, actor)
            case ShowErasureRequest(request_id=request_id):
                return await service.show(request_id)
            case ListErasureRequests(open_only=open_only):
                return await service.list(open_only)
            case ReportSubject():
                return await service.record_access(command, actor)

    return router
