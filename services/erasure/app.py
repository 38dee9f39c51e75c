"""Wires the erasure service together: store, handlers, broker."""

from __future__ import annotations

from faststream.rabbit import RabbitBroker

from services.erasure.handlers import build_router
from services.erasure.store import ErasureStore
from shared.database import DatabaseConnection
from shared.runtime import StartupHooks
from shared.settings import ServiceSettings


async def assemble(
    settings: ServiceSettings, database: DatabaseConnection, broker: RabbitBroker
) -> StartupHooks:
    store = ErasureStore(database.database)
    await store.create_indexes()
    broker.include_router(build_router(store, settings))
    return []
