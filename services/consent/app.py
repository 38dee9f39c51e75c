"""Wires the consent service together: its store, service, publisher and handlers;
shared/runtime.py adds what every service has (the daily retention sweep among it)."""

from __future__ import annotations

from services.consent.handlers import build_router
from services.consent.publisher import ConsentEvents
from services.consent.service import ConsentService
from services.consent.settings import ConsentSettings
from services.consent.store import open_store
from shared.data_holder import Holding
from shared.runtime import service_assembly
from shared.service_definition import Assembly, Parts, ServiceDefinition


@service_assembly
async def assemble(parts: Parts[ConsentSettings]) -> Assembly:
    store = await open_store(parts.database)
    events = ConsentEvents(parts.broker)
    service = ConsentService(store, events, Holding.of(parts, store.erasures))
    return Assembly(
        build_router(service, parts.settings), retained=[service], erasure_records=store.erasures
    )


DEFINITION = ServiceDefinition(ConsentSettings, assemble)
