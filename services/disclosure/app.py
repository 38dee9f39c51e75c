"""Wires the disclosure service together: store, provider queues, service, handlers, broker."""

from __future__ import annotations

from faststream.rabbit import RabbitBroker

from services.disclosure.handlers import build_router
from services.disclosure.publisher import ProviderQueues
from services.disclosure.service import DisclosureService
from services.disclosure.store import DisclosureStore
from shared.database import DatabaseConnection
from shared.identity import SubjectHasher
from shared.runtime import StartupHooks
from shared.settings import ServiceSettings


async def assemble(
    settings: ServiceSettings, database: DatabaseConnection, broker: RabbitBroker
) -> StartupHooks:
    store = DisclosureStore(database.database)
    await store.create_indexes()
    hasher = SubjectHasher(settings.identity_hash_key.get_secret_value())
    service = DisclosureService(store, ProviderQueues(broker), hasher)
    broker.include_router(build_router(service, settings))
    return [service.declare_provider_queues]
