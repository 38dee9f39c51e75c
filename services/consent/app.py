"""Wires the consent service together: store, service, handlers, broker."""

from __future__ import annotations

from faststream.rabbit import RabbitBroker

from services.consent.handlers import build_router
from services.consent.publisher import ConsentEvents
from services.consent.service import SERVICE, ConsentService
from services.consent.store import ConsentStore
from shared.database import DatabaseConnection
from shared.erasure import Participation
from shared.identity import SubjectHasher
from shared.runtime import StartupHooks, queue_inspector
from shared.settings import ServiceSettings


async def assemble(
    settings: ServiceSettings, database: DatabaseConnection, broker: RabbitBroker
) -> StartupHooks:
    store = ConsentStore(database.database)
    await store.create_indexes()
    hasher = SubjectHasher(settings.identity_hash_key.get_secret_value())
    participation = Participation.of(
        SERVICE, store.erasures, queue_inspector(settings, broker), hasher, broker
    )
    service = ConsentService(store, hasher, ConsentEvents(broker), participation)
    broker.include_router(build_router(service, settings))
    return []
