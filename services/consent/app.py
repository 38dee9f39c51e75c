"""Wires the consent service together: store, service, handlers, broker, and the daily
retention sweep."""

from __future__ import annotations

from faststream.rabbit import RabbitBroker

from services.consent.handlers import build_router
from services.consent.publisher import ConsentEvents
from services.consent.service import SERVICE, ConsentService
from services.consent.store import open_store
from shared.database import Database
from shared.erasure.participation import Participation
from shared.identity import SubjectHasher
from shared.retention import SWEEP_INTERVAL_SECONDS
from shared.retention_sweep import retention_sweep, service_policy
from shared.runtime import StartupHooks, every, queue_inspector
from shared.settings import ServiceSettings


async def assemble(
    settings: ServiceSettings, database: Database, broker: RabbitBroker
) -> StartupHooks:
    policy = service_policy(SERVICE)
    store = await open_store(database)
    hasher = SubjectHasher(settings.identity_hash_key.get_secret_value())
    inspector = queue_inspector(settings, broker)
    participation = Participation.of(SERVICE, store.erasures, inspector, hasher, broker)
    service = ConsentService(store, hasher, ConsentEvents(broker), participation, policy)
    broker.include_router(build_router(service, settings))
    sweep = retention_sweep(
        settings,
        broker,
        database,
        policy,
        [service],
        inspector=inspector,
        erasure_records=store.erasures,
    )
    return [every(SWEEP_INTERVAL_SECONDS, sweep.run, at_start=True)]
