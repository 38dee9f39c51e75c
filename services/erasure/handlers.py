"""Messages the erasure service consumes, translated into calls on `ErasureService`."""

from __future__ import annotations

from typing import Any

from faststream.rabbit import RabbitRouter

from services.erasure.service import ErasureService
from shared.commands import Actor
from shared.contracts.erasure import (
    ErasureCommand,
    ErasureReported,
    ListErasureRequests,
    ReportSubject,
    RequestErasure,
    ShowErasureRequest,
)
from shared.contracts.webshop import ErasureRequested
from shared.senders import FROM_THE_SERVICE_IT_NAMES, FROM_WEBSHOP
from shared.settings import ServiceSettings
from shared.subscriptions import Subscriptions
from shared.topology import erasure_reported_subscription, erasure_requested_subscription


def build_router(service: ErasureService, settings: ServiceSettings) -> RabbitRouter:
    on = Subscriptions(settings)

    @on.events(erasure_requested_subscription(), senders=FROM_WEBSHOP)
    async def on_erasure_requested(event: ErasureRequested) -> None:
        """Opens an erasure request and asks every service holding data to erase the person."""
        await service.request_from_webshop(event)

    @on.events(erasure_reported_subscription(), senders=FROM_THE_SERVICE_IT_NAMES)
    async def on_erasure_reported(report: ErasureReported) -> None:
        """Records a service's report; the request is complete when all have reported."""
        await service.record_report(report)

    @on.commands()
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

    return on.router
