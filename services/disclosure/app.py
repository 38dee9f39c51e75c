"""Wires the disclosure service together: store, provider queues, the management API client,
service, handlers, broker, and the daily retention sweep."""

from __future__ import annotations

from faststream.rabbit import RabbitBroker

from services.disclosure.handlers import build_router
from services.disclosure.publisher import ProviderQueues
from services.disclosure.service import DisclosureService, ProviderLogins
from services.disclosure.settings import DisclosureSettings
from services.disclosure.store import open_store
from shared.database import Database
from shared.erasure.participation import Participation
from shared.identity import SubjectHasher
from shared.rabbitmq_admin import RabbitMQAdmin
from shared.retention import SWEEP_INTERVAL_SECONDS
from shared.runtime import StartupHooks, every, queue_inspector


async def assemble(
    settings: DisclosureSettings, database: Database, broker: RabbitBroker
) -> StartupHooks:
    store = await open_store(database)
    hasher = SubjectHasher(settings.identity_hash_key.get_secret_value())
    logins = ProviderLogins(
        admin=RabbitMQAdmin(settings.rabbitmq_management_url, *settings.management_credentials),
        vhost=settings.vhost,
        user_prefix=settings.provider_user_prefix,
        provider_url=settings.provider_url,
    )
    queues = ProviderQueues(broker)

    async def provider_queues() -> list[str]:
        """Whose dead letters (a disclosure a provider rejected) this service answers for: in
        `rekisteri status` and `dlq`, and in an erasure's clean-up."""
        return queues.queue_names(provider.provider_id for provider in await store.providers())

    participation = Participation.of(
        "disclosure",
        store.erasures,
        queue_inspector(settings, broker, provided_queues=provider_queues),
        hasher,
        broker,
    )
    service = DisclosureService(store, queues, hasher, logins, participation)
    broker.include_router(build_router(service, settings))
    return [
        service.declare_provider_queues,
        every(SWEEP_INTERVAL_SECONDS, service.delete_expired, at_start=True),
    ]
