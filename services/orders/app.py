"""Wires the orders service together: its store, service and handlers; shared/runtime.py adds
what every service has (the daily retention sweep among it)."""

from __future__ import annotations

from services.orders.handlers import build_router
from services.orders.service import OrdersService
from services.orders.settings import OrdersSettings
from services.orders.store import open_store
from shared.data_holder import Holding
from shared.runtime import service_assembly
from shared.service_definition import Assembly, Parts, ServiceDefinition


@service_assembly
async def assemble(parts: Parts[OrdersSettings]) -> Assembly:
    store = await open_store(parts.database)
    service = OrdersService(store, Holding.of(parts, store.erasures))
    return Assembly(
        build_router(service, parts.settings), retained=[service], erasure_records=store.erasures
    )


DEFINITION = ServiceDefinition(OrdersSettings, assemble)
