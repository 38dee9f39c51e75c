"""Wires the orders service together: store, service, handlers, broker, and the daily
retention sweep."""

from __future__ import annotations

from faststream.rabbit import RabbitBroker

from services.orders.handlers import build_router
from services.orders.service import SERVICE, OrdersService
from services.orders.store import open_store
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
    service = OrdersService(store, hasher, participation, policy)
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
