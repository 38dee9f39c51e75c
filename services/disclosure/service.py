"""The disclosure service's use cases: disclosing orders and keeping the provider registry."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from services.disclosure.domain import (
    ProviderRefused,
    disclosed_fields,
    plan_disclosures,
    register_provider,
)
from services.disclosure.publisher import ProviderQueues
from services.disclosure.store import DisclosureStore
from shared.contracts.disclosures import Disclosure
from shared.contracts.providers import AddProvider, Provider
from shared.contracts.webshop import OrderPlaced
from shared.identity import SubjectHasher

log = logging.getLogger(__name__)


class DisclosureService:
    def __init__(
        self, store: DisclosureStore, queues: ProviderQueues, hasher: SubjectHasher
    ) -> None:
        self._store = store
        self._queues = queues
        self._hasher = hasher

    async def disclose_order(self, event: OrderPlaced) -> None:
        """Send each provider of the order its disclosure once; hold those that may not get it.

        A disclosure already in the log (sent or held) is never sent again by a redelivered
        event. A crash between sending and logging sends it again with the same disclosure id.
        """
        providers = {p.provider_id: p for p in await self._store.providers(event.provider_ids())}
        for planned in plan_disclosures(event, providers):
            disclosure = planned.disclosure
            if await self._store.is_recorded(str(disclosure.disclosure_id)):
                continue
            subjects = self._subjects(disclosure)
            now = datetime.now(UTC)
            if planned.hold_reason is not None:
                await self._store.record_held(disclosure, subjects, planned.hold_reason, now)
                log.warning(
                    "disclosure held",
                    extra=_ids(disclosure) | {"reason": planned.hold_reason},
                )
                continue
            await self._queues.send(disclosure)
            await self._store.record_sent(disclosure, subjects, disclosed_fields(disclosure), now)
            log.info("disclosure sent", extra=_ids(disclosure))

    async def add_provider(self, command: AddProvider, actor: str) -> Provider:
        provider = register_provider(command, actor, datetime.now(UTC))
        # The queue first: a registered provider always has somewhere for its data to wait.
        await self._queues.declare(provider.provider_id)
        if not await self._store.add_provider(provider):
            raise ProviderRefused(f"provider {provider.provider_id} is already registered")
        log.info("provider registered", extra={"provider_id": provider.provider_id, "actor": actor})
        return provider

    async def list_providers(self) -> list[Provider]:
        return await self._store.providers()

    async def declare_provider_queues(self) -> None:
        for provider in await self._store.providers():
            await self._queues.declare(provider.provider_id)

    def _subjects(self, disclosure: Disclosure) -> list[str]:
        emails = [disclosure.buyer.email, disclosure.recipient.email]
        return [self._hasher(email) for email in emails if email]


def _ids(disclosure: Disclosure) -> dict[str, str]:
    return {
        "order_id": disclosure.order_id,
        "provider_id": disclosure.provider_id,
        "disclosure_id": str(disclosure.disclosure_id),
    }
