"""Wires the erasure service together: its store, service and handlers, and the periodic check
that asks silent participants again; shared/runtime.py adds what every service has (the daily
retention sweep among it)."""

from __future__ import annotations

from services.erasure.handlers import build_router
from services.erasure.publisher import Participants
from services.erasure.retention import ErasureRequestRetention
from services.erasure.service import ErasureService
from services.erasure.settings import ErasureSettings
from services.erasure.store import open_store
from shared.erasure.participation import SubjectDeadLetters
from shared.runtime import every, service_assembly
from shared.service_definition import Assembly, Parts, ServiceDefinition


@service_assembly
async def assemble(parts: Parts[ErasureSettings]) -> Assembly:
    settings = parts.settings
    store = await open_store(parts.database)
    service = ErasureService(
        store,
        parts.hasher,
        Participants(parts.broker),
        SubjectDeadLetters(parts.inspector, parts.hasher),
        settings.timing,
    )
    return Assembly(
        build_router(service, settings),
        retained=[ErasureRequestRetention(store, parts.policy)],
        hooks=[every(settings.erasure_check_interval.total_seconds(), service.retry_due)],
    )


DEFINITION = ServiceDefinition(ErasureSettings, assemble)
