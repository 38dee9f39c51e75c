"""The disclosure service's use cases: disclosing orders, releasing held disclosures, answering
who got whose data, and keeping the provider registry and the providers' broker users."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from services.disclosure.domain import (
    ProviderRefused,
    disclosed_fields,
    hold_reason,
    not_registered,
    plan_disclosures,
    provider_amqp_url,
    provider_changes,
    provider_username,
    register_provider,
)
from services.disclosure.publisher import ProviderQueues
from services.disclosure.store import DisclosureStore
from shared.contracts.disclosure_ops import (
    HeldDisclosure,
    ListDisclosures,
    ReleaseOutcome,
    SentDisclosure,
)
from shared.contracts.disclosures import Disclosure
from shared.contracts.providers import (
    AddProvider,
    ChangeProviderStatus,
    Provider,
    ProviderCredentials,
    UpdateProvider,
)
from shared.contracts.webshop import OrderPlaced
from shared.identity import SubjectHasher
from shared.permissions import provider_party
from shared.rabbitmq_admin import RabbitMQAdmin

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProviderLogins:
    """Where providers' RabbitMQ users are made, in which virtual host, and how they connect."""

    admin: RabbitMQAdmin
    vhost: str
    user_prefix: str
    provider_url: str


class DisclosureService:
    def __init__(
        self,
        store: DisclosureStore,
        queues: ProviderQueues,
        hasher: SubjectHasher,
        logins: ProviderLogins,
    ) -> None:
        self._store = store
        self._queues = queues
        self._hasher = hasher
        self._logins = logins

    # --- disclosing ----------------------------------------------------------------------------

    async def disclose_order(self, event: OrderPlaced) -> None:
        """Send each provider of the order its disclosure once; hold those that may not get it.

        The registry is read for every order, so a change applies from the next one on. A
        disclosure already in the log (sent or held) is never sent again by a redelivered
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

    async def release(self, order_id: str, actor: str) -> ReleaseOutcome:
        """Send the order's held disclosures whose provider may receive data now.

        Each is claimed in the store before it is published, so a concurrent release sends
        nothing twice; one that cannot be published is held again.
        """
        sent: list[str] = []
        still_held: list[HeldDisclosure] = []
        for held in await self._store.held(order_id):
            reason = hold_reason(held.provider_id, await self._store.provider(held.provider_id))
            if reason is not None:
                if reason != held.reason:
                    await self._store.note_hold_reason(held.disclosure_id, reason)
                still_held.append(held.model_copy(update={"reason": reason}))
                continue
            now = datetime.now(UTC)
            disclosure = await self._store.claim_for_release(held.disclosure_id, now)
            if disclosure is None:  # another release has it, or has just sent it
                continue
            try:
                await self._queues.send(disclosure)
            except Exception:
                await self._store.give_back(held.disclosure_id)
                raise
            await self._store.record_sent(
                disclosure,
                self._subjects(disclosure),
                disclosed_fields(disclosure),
                now,
                released_by=actor,
            )
            sent.append(held.provider_id)
            log.info("held disclosure released", extra=_ids(disclosure) | {"actor": actor})
        return ReleaseOutcome(order_id=order_id, sent=sent, held=still_held)

    async def held_disclosures(self) -> list[HeldDisclosure]:
        return await self._store.held()

    async def sent_disclosures(self, query: ListDisclosures) -> list[SentDisclosure]:
        """Who got this person's data, or what this provider got; the email is only hashed."""
        subject = None if query.email is None else self._hasher(query.email)
        return await self._store.sent(
            subject=subject, provider_id=query.provider_id, limit=query.limit
        )

    # --- the provider registry -----------------------------------------------------------------

    async def add_provider(self, command: AddProvider, actor: str) -> Provider:
        provider = register_provider(command, actor, datetime.now(UTC))
        # The queue first: a registered provider always has somewhere for its data to wait.
        await self._queues.declare(provider.provider_id)
        if not await self._store.add_provider(provider):
            raise ProviderRefused(f"provider {provider.provider_id} is already registered")
        log.info("provider registered", extra={"provider_id": provider.provider_id, "actor": actor})
        return provider

    async def update_provider(self, command: UpdateProvider, actor: str) -> Provider:
        return await self._change(command.provider_id, provider_changes(command), actor)

    async def change_provider_status(self, command: ChangeProviderStatus, actor: str) -> Provider:
        return await self._change(command.provider_id, {"status": command.status}, actor)

    async def show_provider(self, provider_id: str) -> Provider:
        provider = await self._store.provider(provider_id)
        if provider is None:
            raise ProviderRefused(not_registered(provider_id))
        return provider

    async def list_providers(self) -> list[Provider]:
        return await self._store.providers()

    async def declare_provider_queues(self) -> None:
        for provider in await self._store.providers():
            await self._queues.declare(provider.provider_id)

    async def issue_credentials(self, provider_id: str, actor: str) -> ProviderCredentials:
        """Create or rotate the provider's RabbitMQ user; the password is returned, never kept.

        Connections opened with the previous password are closed, so a rotation after a leak
        locks the old holder out at once.
        """
        await self.show_provider(provider_id)
        logins = self._logins
        username = provider_username(logins.user_prefix, provider_id)
        password = secrets.token_urlsafe(32)
        await logins.admin.put_user(username, password)
        await logins.admin.set_permissions(
            logins.vhost, username, provider_party(provider_id).permissions
        )
        await logins.admin.close_connections(username)
        log.info(
            "provider credentials issued",
            extra={"provider_id": provider_id, "user": username, "actor": actor},
        )
        return ProviderCredentials(
            provider_id=provider_id,
            username=username,
            amqp_url=provider_amqp_url(logins.provider_url, username, password),
        )

    async def _change(self, provider_id: str, changes: dict[str, object], actor: str) -> Provider:
        provider = await self._store.change_provider(provider_id, changes, actor, datetime.now(UTC))
        if provider is None:
            raise ProviderRefused(not_registered(provider_id))
        log.info(
            "provider changed",
            extra={"provider_id": provider_id, "fields": sorted(changes), "actor": actor},
        )
        return provider

    def _subjects(self, disclosure: Disclosure) -> list[str]:
        emails = [disclosure.buyer.email, disclosure.recipient.email]
        return [self._hasher(email) for email in emails if email]


def _ids(disclosure: Disclosure) -> dict[str, str]:
    return {
        "order_id": disclosure.order_id,
        "provider_id": disclosure.provider_id,
        "disclosure_id": str(disclosure.disclosure_id),
    }
