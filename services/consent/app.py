"""Wires the consent service together: store, service, handlers, broker."""

from __future__ import annotations

from faststream.rabbit import RabbitBroker

from services.consent.handlers import build_router
from services.consent.publisher import ConsentEvents
from services.consent.service import SERVICE, ConsentService
from services.consent.store import open_store
from shared.database import Database
from shared.erasure.participation import Participation
from shared.identity import SubjectHasher
from shared.runtime import StartupHooks, queue_inspector
from shared.settings import ServiceSettings


async def assemble(
    settings: ServiceSettings, database: Database, broker: RabbitBroker
) -> StartupHooks:
    store = await open_store(database)
    hasher = SubjectHasher(settings.identity_hash_key.get_secret_value())
    participation = Participation.of(
        SERVICE, store.erasures, queue_inspector(settings, broker), hasher, broker
    )
    service = ConsentService(store, hasher, ConsentEvents(broker), participation)
    broker.include_router(build_router(service, settings))
    return []
