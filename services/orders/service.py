"""The orders service's use cases: an order arrives, a person is erased, a person's data
expires, a person asks what is kept on them, and who is on an order (only this service knows)."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

from services.orders.domain import (
    ROLES,
    Order,
    order_from_event,
    profiles_from_order,
    without_people,
)
from services.orders.settings import OrdersSettings
from services.orders.store import OrdersStore
from shared.contracts.erasure import EraseSubject, ErasureReported, ReportSubject, Retained, Role
from shared.contracts.orders import PersonOnOrder, missing_person
from shared.contracts.webshop import OrderPlaced
from shared.data_holder import DataHolder, Holding
from shared.erasure.people import all_settled
from shared.erasure.tombstone import Plan, ignore_buried
from shared.errors import Refused
from shared.metrics import IGNORED_AFTER_RETENTION
from shared.retention import RETENTION_BASIS, ledger_kept_until
from shared.retention_policy import Category, finnish_date

log = logging.getLogger(__name__)

SERVICE = OrdersSettings.service_name
LEDGER = "ledger lines (order id, date, products, provider, amounts)"


class OrdersService(DataHolder):
    # Its part of the daily retention sweep (shared/retention_sweep.py `SweepPart`).
    categories = (Category.LEDGER, Category.BUYER, Category.RECIPIENT)

    def __init__(self, store: OrdersStore, holding: Holding) -> None:
        super().__init__(holding)
        self._store = store
        self._buyers = holding.policy[Category.BUYER]
        self._recipients = holding.policy[Category.RECIPIENT]

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
        if expired := await self._expired_on_arrival(order):
            order = without_people(order, expired, [])
            IGNORED_AFTER_RETENTION.labels(SERVICE).inc()
            log.info(
                "an order older than its people's retention: recorded without their data",
                extra=_ids(event),
            )
        # Profiles are updated even for a known order: a crash may have come between the writes.
        new, *_ = await all_settled(
            self._store.add_order(order),
            *map(self._store.update_profile, profiles_from_order(order)),
        )
        return bool(new)

    # --- erasure (`DataHolder.erase` runs the steps) ---------------------------------------------

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
                    await self._store.erase_from_order(order, role, command.request_id)

    # --- retention (shared/retention_sweep.py runs it daily) ----------------------------------
    #
    # A buyer's last order is what this service knows of them: their data (profile, and their
    # data in each order they bought) goes 36 months after it, as an erasure would strip it,
    # without a tombstone: a person who orders again starts again. A recipient's data in an
    # order goes 24 months after that order. Ledger lines that name nobody go at the end of
    # the Accounting Act's years (kept_until).

    async def expired(self, as_of: date) -> dict[Category, int]:
        buyers, recipients = self._cut_offs(as_of)
        return {
            Category.LEDGER: await self._store.count_expired_ledgers(as_of.isoformat()),
            Category.BUYER: await self._store.count_profiles_before("buyer", buyers),
            Category.RECIPIENT: await self._store.count_orders_with_recipient_before(recipients),
        }

    async def delete_expired(self, as_of: date, now: datetime) -> dict[Category, int]:
        """Ledger lines first: an order whose last person goes now is deleted by the next
        sweep, so that each sweep deletes exactly what its preview counted."""
        buyers, recipients = self._cut_offs(as_of)
        ledger = await self._store.delete_expired_ledgers(as_of.isoformat())
        expired_buyers = 0
        for subject in await self._store.profiles_before("buyer", buyers):
            expired_buyers += await self._expire_buyer(subject, buyers)
        expired_recipients = 0
        for order in await self._store.orders_with_recipient_before(recipients):
            expired_recipients += await self._expire_recipient(order)
        # A recipient's profile repeats their latest order's data: it went with that order.
        for subject in await self._store.profiles_before("recipient", recipients):
            async with self._participation.people.holding([subject]):
                await self._store.delete_profile_before("recipient", subject, recipients)
        return {
            Category.LEDGER: ledger,
            Category.BUYER: expired_buyers,
            Category.RECIPIENT: expired_recipients,
        }

    def _cut_offs(self, as_of: date) -> tuple[datetime, datetime]:
        return self._buyers.expired_before(as_of), self._recipients.expired_before(as_of)

    async def _expire_buyer(self, subject: str, before: datetime) -> int:
        """Strip the buyer from every order they bought and delete their buyer profile, unless
        an order has come since they were found; 1 when they were."""
        async with self._participation.people.holding([subject]):
            bought = [o for o in await self._store.orders_of(subject) if o.buyer_subject == subject]
            if any(order.placed_at >= before for order in bought):
                return 0
            if not await self._store.delete_profile_before("buyer", subject, before):
                return 0
            for order in bought:
                await self._store.erase_from_order(order, "buyer", None)
        return 1

    async def _expire_recipient(self, order: Order) -> int:
        subject = order.recipient_subject
        assert subject is not None
        async with self._participation.people.holding([subject]):
            await self._store.erase_from_order(order, "recipient", None)
        return 1

    async def _expired_on_arrival(self, order: Order) -> set[Role]:
        """The people whose data in this order a sweep today would delete: a late or replayed
        order does not bring back what has expired. The buyer's data has, if neither this order
        nor any later one known of theirs is within the buyer's retention."""
        today = finnish_date(self._clock())
        expired: set[Role] = set()
        if order.recipient_subject is not None and self._recipients.expired(order.placed_at, today):
            expired.add("recipient")
        buyer = order.buyer_subject
        if buyer is not None and self._buyers.expired(order.placed_at, today):
            profile = await self._store.profile("buyer", buyer)
            if profile is None or self._buyers.expired(profile.as_of, today):
                expired.add("buyer")
        return expired

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

    async def look_up(self, order_id: str, role: Role) -> dict[str, Any]:
        """Staff's question who is on an order: the person's subject, or `Refused` saying why
        there is none."""
        found = await self.person_on_order(order_id, role)
        if found.missing is not None:
            raise Refused(missing_person(order_id, role, found.missing))
        return {"order_id": order_id, "role": role, "subject": found.subject}

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
