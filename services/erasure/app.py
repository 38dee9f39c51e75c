"""Wires the erasure service together: store, service, handlers, broker, the periodic check
that asks silent participants again, and the daily retention sweep."""

from __future__ import annotations

from faststream.rabbit import RabbitBroker

from services.erasure.domain import Timing
from services.erasure.handlers import build_router
from services.erasure.publisher import Participants
from services.erasure.retention import ErasureRequestRetention
from services.erasure.service import ErasureService
from services.erasure.settings import ErasureSettings
from services.erasure.store import open_store
from shared.database import Database
from shared.erasure.participation import SubjectDeadLetters
from shared.identity import SubjectHasher
from shared.retention import SWEEP_INTERVAL_SECONDS
from shared.retention_sweep import retention_sweep, service_policy
from shared.runtime import StartupHooks, every, queue_inspector


async def assemble(
    settings: ErasureSettings, database: Database, broker: RabbitBroker
) -> StartupHooks:
    policy = service_policy("erasure")
    store = await open_store(database)
    hasher = SubjectHasher(settings.identity_hash_key.get_secret_value())
    inspector = queue_inspector(settings, broker)
    timing = Timing(
        deadline=settings.erasure_deadline,
        retry_first=settings.erasure_retry_first,
        retry_max=settings.erasure_retry_max,
        stuck_after=settings.erasure_stuck_after,
    )
    service = ErasureService(
        store,
        hasher,
        Participants(broker),
        SubjectDeadLetters(inspector, hasher),
        timing,
    )
    broker.include_router(build_router(service, settings))
    sweep = retention_sweep(
        settings,
        broker,
        database,
        policy,
        [ErasureRequestRetention(store, policy)],
        inspector=inspector,
    )
    return [
        every(settings.erasure_check_interval.total_seconds(), service.retry_due),
        every(SWEEP_INTERVAL_SECONDS, sweep.run, at_start=True),
    ]
