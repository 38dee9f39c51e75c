"""The orders service's use cases: an order arrives, a person is erased, a person asks what is
kept on them, and who is on an order (only this service knows)."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from services.orders.domain import (
    ROLES,
    Order,
    order_from_event,
    profiles_from_order,
    without_people,
)
from services.orders.store import OrdersStore
from shared.contracts.erasure import EraseSubject, ErasureReported, ReportSubject, Retained, Role
from shared.contracts.orders import PersonOnOrder
from shared.contracts.webshop import OrderPlaced
from shared.erasure.participation import Participation
from shared.erasure.tombstone import Plan, ignore_buried
from shared.identity import SubjectHasher
from shared.retention import RETENTION_BASIS, expired_before, ledger_kept_until

log = logging.getLogger(__name__)

SERVICE = "orders"
LEDGER = "ledger lines (order id, date, products, provider, amounts)"


class OrdersService:
    def __init__(
        self, store: OrdersStore, hasher: SubjectHasher, participation: Participation
    ) -> None:
        self._store = store
        self._hasher = hasher
        self._participation = participation

    async def record_order(self, event: OrderPlaced) -> None:
        """Keep the order in the buyer's history and both people's latest data; idempotent.

        A person erased after the order was placed is left out of it (a late or replayed
        event); its ledger lines are kept all the same, as the erasure would have kept them.
        """
        order = order_from_event(event, self._hasher, recorded_at=datetime.now(UTC))
        subjects = [subject for role in ROLES if (subject := order.subject(role)) is not None]
        # From the tombstone check to the last write, no erasure of these people can interleave.
        async with self._participation.people.holding(subjects):
            new = await self._record(order, subjects, event)
        log.info(
            "order recorded" if new else "order already recorded",
            extra={**_ids(event), "subject": order.buyer_subject},
        )

    async def _record(self, order: Order, subjects: list[str], event: OrderPlaced) -> bool:
        tombstones = await self._store.erasures.tombstones(subjects)
        buried = {
            role: tombstone
            for role in ROLES
            if (tombstone := tombstones.get(order.subject(role) or "")) is not None
            and tombstone.buries(order.placed_at)
        }
        if buried:
            request_ids = [rid for tombstone in buried.values() for rid in tombstone.request_ids]
            order = without_people(order, set(buried), request_ids)
            ignore_buried(SERVICE, "the data of an erased person in an order", _ids(event))
        new = await self._store.add_order(order)
        # Profiles are updated even for a known order: a crash may have come between the writes.
        for profile in profiles_from_order(order):
            await self._store.update_profile(profile)
        return new

    # --- erasure (shared/erasure.py runs the steps) ----------------------------------------------

    async def erase(self, command: EraseSubject) -> None:
        await self._participation.erase(command, self)

    async def plan_erasure(self, command: EraseSubject) -> Plan:
        subject = command.subject
        orders = await self._store.orders_of(subject)
        erased = {
            f"{role} profiles": int(await self._store.profile(role, subject) is not None)
            for role in ROLES
        }
        erased["orders stripped of personal data"] = len(orders)
        by_end: dict[str, list[str]] = defaultdict(list)
        for order in orders:
            by_end[ledger_kept_until(order.placed_at).isoformat()].append(order.order_id)
        kept = [
            Retained(what=LEDGER, basis=RETENTION_BASIS, until=until, order_ids=sorted(order_ids))
            for until, order_ids in sorted(by_end.items())
        ]
        return Plan(erased=erased, kept=kept, providers_notified=[])

    async def carry_out_erasure(self, command: EraseSubject, report: ErasureReported) -> None:
        subject = command.subject
        await self._store.erase_profiles(subject)
        for order in await self._store.orders_of(subject):
            for role in ROLES:
                if order.subject(role) == subject:
                    await self._store.erase_from_order(
                        order.order_id, role, subject, command.request_id, order.placed_at
                    )

    async def delete_expired(self, now: datetime | None = None) -> int:
        """Delete the orders kept only for their ledger lines whose retention has ended."""
        deleted = await self._store.delete_expired_ledgers(expired_before(now or datetime.now(UTC)))
        if deleted:
            log.info("orders past their retention deleted", extra={"count": deleted})
        return deleted

    # --- who is on an order -----------------------------------------------------------------------

    async def person_on_order(self, order_id: str, role: Role) -> PersonOnOrder:
        """The subject of the person in `role` on the order, as every service names them.

        After their erasure the order names nobody in that role. Someone erased by the name
        their place on the order gives them (a recipient without an email) is still found by
        it, through their tombstone: asking again finds their erasure, not a stranger.
        """
        order = await self._store.order(order_id)
        if order is None:
            return PersonOnOrder(missing="order")
        subject = order.subject(role)
        if subject is None and order.person(role) is not None:
            # Recorded before people without an email were named by their order: no service
            # knows them by that name, so an erasure by it would leave their data behind.
            return PersonOnOrder(missing="unnamed")
        if subject is None:
            reference = self._hasher.of_order_person(order_id, role)
            if await self._store.erasures.tombstone(reference) is not None:
                subject = reference
        if subject is None:
            return PersonOnOrder(missing="person")
        return PersonOnOrder(subject=subject)

    # --- access -----------------------------------------------------------------------------------

    async def report(self, person: ReportSubject, actor: str) -> dict[str, Any]:
        """What the orders service holds on the person (GDPR Art. 15): their profiles, their
        data in each order they bought or received, and after an erasure the ledger lines kept."""
        subject = person.subject_hash(self._hasher)
        log.info("access report given", extra={"subject": subject, "actor": actor})
        tombstone = await self._store.erasures.tombstone(subject)
        profiles = {role: await self._store.profile(role, subject) for role in ROLES}
        return {
            "subject": subject,
            "profiles": {
                role: {"data": profile.person, "as_of": profile.as_of}
                for role, profile in profiles.items()
                if profile is not None
            },
            "orders": [
                _their_order(order, subject) for order in await self._store.orders_of(subject)
            ],
            "erased_at": None if tombstone is None else tombstone.erased_at,
            "retained": []
            if tombstone is None
            else [
                _retained(order)
                for order in await self._store.retained_orders(tombstone.request_ids)
            ],
        }


def _ledger(order: Order) -> dict[str, Any]:
    """What an access report shows of an order: its ledger lines."""
    return {
        "order_id": order.order_id,
        "placed_at": order.placed_at,
        "currency": order.currency,
        "lines": [line.model_dump() for line in order.lines],
        "total_cents": order.total_cents,
    }


def _their_order(order: Order, subject: str) -> dict[str, Any]:
    """An order as the person sees it: the ledger, and their own data in the roles they had."""
    return {
        **_ledger(order),
        **{f"as_{role}": order.person(role) for role in ROLES if order.subject(role) == subject},
    }


def _retained(order: Order) -> dict[str, Any]:
    """A ledger kept after the person's erasure, and why it is kept."""
    return {**_ledger(order), "retention": order.retention}


def _ids(event: OrderPlaced) -> dict[str, str]:
    return {"order_id": event.order_id, "event_id": str(event.event_id)}
