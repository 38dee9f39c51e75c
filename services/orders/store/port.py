"""What the orders service keeps, as the service layer sees it: orders, profiles, erasures.

An order a person was erased from keeps its ledger lines, `retention` (why, until when) and
`erasures` (the request ids), without that person's data or hash; one whose person's data
expired (the retention sweep) the same, without an erasure request. Once it holds nobody's
data, `kept_until` says the last day it is kept; the retention sweep deletes it after that day.

A buyer's profile is as of their latest order (`update_profile` takes only newer data): the
retention sweep finds the buyers whose last order is before its cut-off by it, indexed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from services.orders.domain import Order, Profile, Role
from shared.erasure.records import ErasureRecords


class OrdersStore(Protocol):
    erasures: ErasureRecords

    async def prepare(self) -> None:
        """Create what the store needs (tables, indexes); safe at every start."""
        ...

    async def add_order(self, order: Order) -> bool:
        """Store the order unless its id is known; True when it was new."""
        ...

    async def update_profile(self, profile: Profile) -> bool:
        """Take the profile's data unless the stored one is from the same or a later event;
        True when it changed. Of concurrent updates, the newest event's data always wins."""
        ...

    async def profile(self, role: Role, subject: str) -> Profile | None: ...

    async def order(self, order_id: str) -> Order | None: ...

    async def orders_of(self, subject: str) -> list[Order]:
        """Every order the person is the buyer or the recipient of, newest first."""
        ...

    async def retained_orders(self, request_ids: Iterable[str]) -> list[Order]:
        """The orders these erasures stripped (kept for their ledger lines), oldest first."""
        ...

    async def erase_profiles(self, subject: str) -> None: ...

    async def erase_from_order(self, order: Order, role: Role, request_id: str | None) -> None:
        """Strip the person `order` names in `role` (their data and hash) from the stored order,
        keeping its ledger lines; a stored order that no longer names them is left as it is.
        An order that then holds nobody's data is kept only to the end of its retention.
        `request_id` None: their data expired, no erasure request stripped it."""
        ...

    async def delete_expired_ledgers(self, before: str) -> int:
        """Delete the orders that hold nobody's data, kept to a day before `before` (ISO)."""
        ...

    # --- the retention sweep ---------------------------------------------------------------------

    async def count_expired_ledgers(self, before: str) -> int:
        """How many orders `delete_expired_ledgers(before)` would delete."""
        ...

    async def profiles_before(self, role: Role, before: datetime) -> list[str]:
        """The subjects whose profile in `role` is as of before `before`, oldest first."""
        ...

    async def count_profiles_before(self, role: Role, before: datetime) -> int: ...

    async def delete_profile_before(self, role: Role, subject: str, before: datetime) -> bool:
        """Delete the person's profile in `role` if it is still as of before `before` (a newer
        order may have come since it was found); True when it was deleted."""
        ...

    async def orders_with_recipient_before(self, before: datetime) -> list[Order]:
        """The orders placed before `before` that still hold their recipient's data, oldest
        first."""
        ...

    async def count_orders_with_recipient_before(self, before: datetime) -> int: ...
