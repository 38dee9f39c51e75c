"""The disclosure service's use cases: disclosing orders, releasing held disclosures, answering
who got whose data, keeping the provider registry (and each provider's queue), and its part of
an erasure: telling each provider that received the person's data."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from yarl import URL

from services.disclosure.domain import (
    AMQP_DEFAULT_PORTS,
    ProviderRefused,
    erased_reference,
    hold_reason,
    not_registered,
    plan_disclosures,
    provider_changes,
    provider_username,
    register_provider,
    unnamed_entry_kept_until,
)
from services.disclosure.publisher import ProviderQueues
from services.disclosure.settings import DisclosureSettings
from services.disclosure.store import DisclosureStore, Named
from shared.contracts.disclosure_ops import (
    HeldDisclosure,
    ListDisclosures,
    ReleaseOutcome,
    SentDisclosure,
)
from shared.contracts.disclosures import Disclosure, ErasureNotice, erasure_notice_id_for
from shared.contracts.erasure import (
    EraseSubject,
    ErasureReported,
    OrderPerson,
    ReportSubject,
    Retained,
    Role,
)
from shared.contracts.providers import (
    AddProvider,
    ChangeProviderStatus,
    Provider,
    ProviderCredentials,
    UpdateProvider,
)
from shared.contracts.webshop import OrderPlaced, Person
from shared.data_holder import DataHolder, Holding
from shared.erasure.people import all_settled
from shared.erasure.tombstone import Plan, ignore_buried
from shared.metrics import IGNORED_AFTER_RETENTION
from shared.retention_policy import Category, finnish_date

log = logging.getLogger(__name__)

SERVICE = DisclosureSettings.service_name
LOG_BASIS = (
    "GDPR Art. 5(2) and 19: proof of which providers received the data and were told of the erasure"
)
LOG_KEPT_UNTIL = "as long as the ledger lines of the orders concerned are kept"


@dataclass(frozen=True)
class ProviderLogins:
    """How providers' RabbitMQ users are named, and where providers connect."""

    user_prefix: str
    provider_url: str


class DisclosureService(DataHolder):
    def __init__(
        self,
        store: DisclosureStore,
        queues: ProviderQueues,
        logins: ProviderLogins,
        holding: Holding,
    ) -> None:
        super().__init__(holding)
        self._store = store
        self._queues = queues
        self._logins = logins
        self._recipients = holding.policy[Category.RECIPIENT]

    # --- disclosing ----------------------------------------------------------------------------

    async def disclose_order(self, event: OrderPlaced) -> None:
        """Send each provider of the order its disclosure once; hold those that may not get it.

        The registry is read for every order, so a change applies from the next one on. A
        disclosure already in the log (sent or held) is never sent again by a redelivered
        event. A crash between sending and logging sends it again with the same disclosure id.
        """
        people = self._people(event.order_id, event.buyer, event.recipient)
        subjects = [person.subject for person in people]
        # From the tombstone check to the last send and log entry, no erasure of these people
        # can interleave: none is told of its orders before a disclosure still on its way.
        async with self._participation.people.holding(subjects):
            await self._disclose(event, subjects)

    async def _disclose(self, event: OrderPlaced, subjects: list[str]) -> None:
        # The registry is read even for an order that turns out buried (rare).
        tombstones, registered = await all_settled(
            self._store.erasures.tombstones(subjects), self._store.providers(event.provider_ids())
        )
        if any(tombstone.buries(event.occurred_at) for tombstone in tombstones.values()):
            # Sending it now would give a provider the data of a person erased since.
            ignore_buried(SERVICE, "an order of an erased person", _event_ids(event))
            return
        if self._recipients.expired(event.occurred_at, finnish_date(self._clock())):
            # Its recipient's data has expired (and the log of it may have gone with its end):
            # a late or replayed order is disclosed to nobody.
            IGNORED_AFTER_RETENTION.labels(SERVICE).inc()
            log.info("an order older than its retention: not disclosed", extra=_event_ids(event))
            return
        providers = {provider.provider_id: provider for provider in registered}
        for planned in plan_disclosures(event, providers):
            disclosure = planned.disclosure
            if await self._store.is_recorded(str(disclosure.disclosure_id)):
                continue
            people = self._people(disclosure.order_id, disclosure.buyer, disclosure.recipient)
            now = datetime.now(UTC)
            if planned.hold_reason is not None:
                await self._store.record_held(disclosure, people, planned.hold_reason, now)
                log.warning(
                    "disclosure held",
                    extra=_ids(disclosure) | {"reason": planned.hold_reason},
                )
                continue
            await self._queues.send(disclosure)
            await self._store.record_sent(disclosure, people, now)
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
            people = self._people(disclosure.order_id, disclosure.buyer, disclosure.recipient)
            subjects = [person.subject for person in people]
            # Claimed, then the people's lock: an erasure that cancelled the claim meanwhile has
            # finished, and none can start until this one is sent and logged.
            async with self._participation.people.holding(subjects):
                tombstones = await self._store.erasures.tombstones(subjects)
                if any(t.buries(disclosure.occurred_at) for t in tombstones.values()):
                    # Its erasure cancels it, or already has: never sent.
                    await self._store.give_back(held.disclosure_id)
                    continue
                try:
                    await self._queues.send(disclosure)
                except Exception:
                    await self._store.give_back(held.disclosure_id)
                    raise
                await self._store.record_sent(disclosure, people, now, released_by=actor)
            sent.append(held.provider_id)
            log.info("held disclosure released", extra=_ids(disclosure) | {"actor": actor})
        return ReleaseOutcome(order_id=order_id, sent=sent, held=still_held)

    async def held_disclosures(self) -> list[HeldDisclosure]:
        return await self._store.held()

    async def sent_disclosures(self, query: ListDisclosures) -> list[SentDisclosure]:
        """Who got this person's data, or what this provider got; the email is only hashed."""
        if query.email is not None:
            return await self._store.sent_naming(self._hasher(query.email), query.limit)
        assert query.provider_id is not None  # ListDisclosures asks for one of the two
        return await self._store.sent_to(query.provider_id, query.limit)

    # --- erasure (`DataHolder.erase` runs the steps) ---------------------------------------------

    async def plan_erasure(self, command: EraseSubject) -> Plan:
        """One notice for each provider that received the person's data, for those orders and
        saying as whom (buyer, recipient); the log entries stay, without the person's hash;
        held disclosures are cancelled."""
        received: dict[str, set[str]] = {}
        for sent in await self._store.sent_naming(command.subject):
            received.setdefault(sent.provider_id, set()).add(sent.order_id)
        roles = await self._roles(command.subject, {o for ids in received.values() for o in ids})
        held = await self._store.held_of(command.subject)
        kept = [
            Retained(
                what=f"disclosure log: what {provider_id} received of these orders, and when "
                "(the person's hash replaced by the erasure request's id)",
                basis=LOG_BASIS,
                until=LOG_KEPT_UNTIL,
                order_ids=sorted(order_ids),
                provider_id=provider_id,
                # None, not [], where the log does not say: no role is not "neither role".
                roles=[role for role in roles if role.order_id in order_ids] or None,
            )
            for provider_id, order_ids in sorted(received.items())
        ]
        return Plan(
            erased={"held disclosures (with their copy of the data)": len(held)},
            kept=kept,
            providers_notified=sorted(received),
        )

    async def carry_out_erasure(self, command: EraseSubject, report: ErasureReported) -> None:
        for retained in report.kept:
            assert retained.provider_id is not None
            notice = ErasureNotice(
                notice_id=erasure_notice_id_for(command.request_id, retained.provider_id),
                order_ids=retained.order_ids,
                occurred_at=command.erased_at,
                roles=retained.roles,
            )
            await self._queues.send_erasure_notice(retained.provider_id, notice)
            log.info(
                "erasure notice sent",
                extra={"provider_id": retained.provider_id, "request_id": command.request_id},
            )
        await self._store.cancel_held(
            command.subject, f"cancelled: the person was erased (request {command.request_id})"
        )
        reference = erased_reference(command.request_id)
        await self._store.replace_subject(command.subject, reference)
        for entry in await self._store.entries_naming(reference):
            if (until := unnamed_entry_kept_until(entry.subjects, entry.placed_at)) is not None:
                await self._store.keep_until(entry.disclosure_id, until)

    async def _roles(self, subject: str, order_ids: set[str]) -> list[OrderPerson]:
        """The person's place on each of these orders, as their log entries say (none for an
        entry logged before the log kept roles)."""
        roles = {
            OrderPerson(order_id=order_id, role=person.role)
            for order_id in order_ids
            for entry in await self._store.log_of(order_id)
            for person in entry.people
            if person.subject == subject and person.role is not None
        }
        return sorted(roles, key=lambda role: (role.order_id, role.role))

    # --- access -----------------------------------------------------------------------------------

    async def report(self, person: ReportSubject, actor: str) -> dict[str, Any]:
        """Who received the person's data, which fields and when; what is held back; after an
        erasure, the log entries kept (GDPR Art. 15(1)(c))."""
        subject = person.subject_hash(self._hasher)
        log.info("access report given", extra={"subject": subject, "actor": actor})
        tombstone = await self._store.erasures.tombstone(subject)
        retained = (
            []
            if tombstone is None
            else await self._store.sent_naming(
                [erased_reference(request_id) for request_id in tombstone.request_ids]
            )
        )
        return {
            "subject": subject,
            "sent": await self._store.sent_naming(subject),
            "held": await self._store.held_of(subject),
            "erased_at": None if tombstone is None else tombstone.erased_at,
            "retained": retained,
        }

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
        """Staff's request for a provider's credentials: a registered provider's user name and
        where it connects (no password), for `rekisteri providers credentials` to make the
        user as RabbitMQ's administrator, which this service is not and never holds.

        Being a command, the request is in the audit log (shared/messaging.py), refused or not.
        """
        await self.show_provider(provider_id)
        username = provider_username(self._logins.user_prefix, provider_id)
        log.info(
            "provider credentials requested",
            extra={"provider_id": provider_id, "user": username, "actor": actor},
        )
        return ProviderCredentials(
            provider_id=provider_id,
            username=username,
            amqp_url=provider_address(self._logins.provider_url, username),
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

    def _people(self, order_id: str, buyer: Person, recipient: Person) -> list[Named]:
        """The order's people as every service names them: by the hash of their email, or,
        without one (a gift-card recipient), by the hash of their place on the order."""
        roles: tuple[tuple[Role, Person], ...] = (("buyer", buyer), ("recipient", recipient))
        return [
            Named(
                self._hasher(person.email)
                if person.email
                else self._hasher.of_order_person(order_id, role),
                role,
            )
            for role, person in roles
        ]


def provider_address(provider_url: str, username: str) -> str:
    """`amqp[s]://USER@HOST:PORT/VHOST`: where the provider connects, and as whom."""
    url = URL(provider_url)
    if url.explicit_port is None:
        url = url.with_port(AMQP_DEFAULT_PORTS[url.scheme])
    return str(url.with_user(username))


def _event_ids(event: OrderPlaced) -> dict[str, str]:
    return {"order_id": event.order_id, "event_id": str(event.event_id)}


def _ids(disclosure: Disclosure) -> dict[str, str]:
    return {
        "order_id": disclosure.order_id,
        "provider_id": disclosure.provider_id,
        "disclosure_id": str(disclosure.disclosure_id),
    }
