"""Wires the disclosure service together: store, provider queues, service, handlers, broker,
and the daily retention sweep; in production it first makes sure it is no administrator."""

from __future__ import annotations

import logging

from faststream.rabbit import RabbitBroker

from services.disclosure.handlers import build_router
from services.disclosure.publisher import ProviderQueues
from services.disclosure.retention import DisclosureRetention
from services.disclosure.service import DisclosureService, ProviderLogins
from services.disclosure.settings import DisclosureSettings
from services.disclosure.store import open_store
from shared.database import Database
from shared.erasure.participation import Participation
from shared.identity import SubjectHasher
from shared.rabbitmq_admin import RabbitMQAdmin, RabbitMQAdminError
from shared.retention import SWEEP_INTERVAL_SECONDS
from shared.retention_sweep import retention_sweep, service_policy
from shared.runtime import StartupHooks, every, finds_topology, queue_inspector

log = logging.getLogger(__name__)
ADMINISTRATOR = "administrator"


async def assemble(
    settings: DisclosureSettings, database: Database, broker: RabbitBroker
) -> StartupHooks:
    if settings.environment == "production":
        await refuse_an_administrator(settings)
    store = await open_store(database)
    hasher = SubjectHasher(settings.identity_hash_key.get_secret_value())
    logins = ProviderLogins(
        user_prefix=settings.provider_user_prefix, provider_url=settings.provider_url
    )
    queues = ProviderQueues(broker, provisioned=finds_topology(settings))

    async def provider_queues() -> list[str]:
        """Whose dead letters (a disclosure a provider rejected) this service answers for: in
        `rekisteri status` and `dlq`, and in an erasure's clean-up."""
        return queues.queue_names(provider.provider_id for provider in await store.providers())

    inspector = queue_inspector(settings, broker, provided_queues=provider_queues)
    participation = Participation.of("disclosure", store.erasures, inspector, hasher, broker)
    policy = service_policy("disclosure")
    service = DisclosureService(store, queues, hasher, logins, participation, policy)
    broker.include_router(build_router(service, settings))
    sweep = retention_sweep(
        settings,
        broker,
        database,
        policy,
        [DisclosureRetention(store, policy)],
        inspector=inspector,
        erasure_records=store.erasures,
    )
    return [
        service.declare_provider_queues,
        every(SWEEP_INTERVAL_SECONDS, sweep.run, at_start=True),
    ]


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
