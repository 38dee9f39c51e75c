"""Wires the disclosure service together: its store, provider queues, service and handlers;
shared/runtime.py adds what every service has (the daily retention sweep among it). In
production it first makes sure it is no administrator."""

from __future__ import annotations

import logging

from services.disclosure.handlers import build_router
from services.disclosure.publisher import ProviderQueues
from services.disclosure.retention import DisclosureRetention
from services.disclosure.service import DisclosureService, ProviderLogins
from services.disclosure.settings import DisclosureSettings
from services.disclosure.store import open_store
from shared.data_holder import Holding
from shared.rabbitmq_admin import RabbitMQAdmin, RabbitMQAdminError
from shared.runtime import finds_topology, service_assembly
from shared.service_definition import Assembly, Parts, ServiceDefinition

log = logging.getLogger(__name__)
ADMINISTRATOR = "administrator"


@service_assembly
async def assemble(parts: Parts[DisclosureSettings]) -> Assembly:
    settings = parts.settings
    if settings.environment == "production":
        await refuse_an_administrator(settings)
    store = await open_store(parts.database)
    logins = ProviderLogins(
        user_prefix=settings.provider_user_prefix, provider_url=settings.provider_url
    )
    queues = ProviderQueues(parts.broker, provisioned=finds_topology(settings))

    async def provider_queues() -> list[str]:
        """Whose dead letters (a disclosure a provider rejected) this service answers for: in
        `rekisteri status` and `dlq`, and in an erasure's clean-up."""
        return queues.queue_names(provider.provider_id for provider in await store.providers())

    parts.inspector.answer_also_for(provider_queues)
    service = DisclosureService(store, queues, logins, Holding.of(parts, store.erasures))
    return Assembly(
        build_router(service, settings),
        retained=[DisclosureRetention(store, parts.policy)],
        erasure_records=store.erasures,
        hooks=[service.declare_provider_queues],
    )


DEFINITION = ServiceDefinition(DisclosureSettings, assemble)


async def refuse_an_administrator(settings: DisclosureSettings) -> None:
    """Stop unless RABBITMQ_URL's user is no administrator: whoever took over a long-running
    service that is one would own the broker. The management API is asked as that user; one
    without management tags (every user `rekisteri rabbitmq provision` makes) is let in by it
    with none. An API that cannot be reached cannot be misused through this login either: the
    start goes on, and says it could not check (the error names the address, never a
    password)."""
    try:
        tags = await RabbitMQAdmin(settings.rabbitmq_management_url, *settings.login).tags()
    except RabbitMQAdminError as error:
        log.warning(
            "could not ask RabbitMQ's management API whether this service's user is an "
            "administrator: %s",
            error,
        )
        return
    if ADMINISTRATOR in tags:
        raise SystemExit(
            "disclosure: REGISTER_ENV=production: RABBITMQ_URL logs in as an administrator of "
            "RabbitMQ; the service must log in as its own user (`rekisteri rabbitmq provision`)"
        )
