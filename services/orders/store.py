"""The orders service's MongoDB database; the only code that touches it.

Collections: `orders` (one document per order id), `customers` (buyers) and `recipients`
(one profile per subject hash), and the erasure records (`tombstones`, `erasure_reports`:
shared/erasure.py). An order a person was erased from keeps its ledger lines, `retention`
(why, until when) and `erasures` (the request ids), without that person's data or hash. Once
it holds nobody's data, `kept_until` says the last day it is kept; the retention sweep deletes it
after that day.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from services.orders.domain import ROLES, Order, Profile, Role, retention
from shared.database import Database, conditional_upsert
from shared.erasure import ErasureRecords

PROFILE_COLLECTIONS: dict[Role, str] = {"buyer": "customers", "recipient": "recipients"}
# What an access report shows of a retained order: its ledger, and why it is kept.
LEDGER_FIELDS = ("placed_at", "currency", "lines", "total_cents", "retention")


class OrdersStore:
    def __init__(self, database: Database) -> None:
        self._orders = database["orders"]
        self._profiles = {role: database[name] for role, name in PROFILE_COLLECTIONS.items()}
        self.erasures = ErasureRecords(database)

    async def create_indexes(self) -> None:
        await self._orders.create_indexes(
            [
                IndexModel([("buyer_subject", ASCENDING), ("placed_at", DESCENDING)]),
                IndexModel([("recipient_subject", ASCENDING)], sparse=True),
                IndexModel([("erasures", ASCENDING)], sparse=True),
                IndexModel([("kept_until", ASCENDING)], sparse=True),
            ]
        )

    async def add_order(self, order: Order) -> bool:
        """Store the order unless its id is known; True when it was new."""
        document = order.model_dump(exclude_none=True)
        document["_id"] = document.pop("order_id")
        try:
            await self._orders.insert_one(document)
        except DuplicateKeyError:
            return False
        return True

    async def update_profile(self, profile: Profile) -> bool:
        """Take the profile's data unless the stored one is from the same or a later event."""
        now = datetime.now(UTC)
        return await conditional_upsert(
            self._profiles[profile.role],
            profile.subject,
            {"as_of": {"$lt": profile.as_of}},
            {
                "$set": {"person": profile.person, "as_of": profile.as_of, "updated_at": now},
                "$setOnInsert": {"first_seen_at": now},
            },
        )

    async def order(self, order_id: str) -> dict[str, Any] | None:
        return await self._orders.find_one({"_id": order_id})

    async def orders_of_buyer(self, subject: str) -> list[dict[str, Any]]:
        cursor = self._orders.find({"buyer_subject": subject}).sort("placed_at", DESCENDING)
        return await cursor.to_list(None)

    async def profile(self, role: Role, subject: str) -> dict[str, Any] | None:
        return await self._profiles[role].find_one({"_id": subject})

    # --- a person's orders: access and erasure --------------------------------------------------

    async def orders_of(self, subject: str) -> list[dict[str, Any]]:
        """Every order the person is the buyer or the recipient of, newest first."""
        query = {"$or": [{f"{role}_subject": subject} for role in ROLES]}
        orders = await self._orders.find(query).to_list(None)
        return sorted(orders, key=lambda order: order["placed_at"], reverse=True)

    async def retained_orders(self, request_ids: Iterable[str]) -> list[dict[str, Any]]:
        """The ledgers kept of orders these erasures stripped, oldest first."""
        cursor = self._orders.find(
            {"erasures": {"$in": list(request_ids)}}, {field: 1 for field in LEDGER_FIELDS}
        )
        return sorted(await cursor.to_list(None), key=lambda order: order["placed_at"])

    async def erase_profiles(self, subject: str) -> None:
        for profiles in self._profiles.values():
            await profiles.delete_one({"_id": subject})

    async def erase_from_order(
        self, order_id: str, role: Role, subject: str, request_id: str, placed_at: datetime
    ) -> None:
        """Strip the person's data and hash in `role` from the order, keeping its ledger lines;
        an order that then holds nobody's data is kept only to the end of their retention."""
        kept = retention(placed_at)
        await self._orders.update_one(
            {"_id": order_id, f"{role}_subject": subject},
            {
                "$unset": {role: "", f"{role}_subject": ""},
                "$set": {"retention": kept},
                "$addToSet": {"erasures": request_id},
            },
        )
        # A second step, after the first in every erasure, so that of two erasures of its two
        # people at once the later one always sees the order hold nobody's data. (A recipient
        # without an email address has no hash to be erased by: their name keeps the order.)
        await self._orders.update_one(
            {"_id": order_id, **dict.fromkeys(ROLES)},
            {"$set": {"kept_until": kept["until"]}},
        )

    async def delete_expired_ledgers(self, before: str) -> int:
        """Delete the orders that hold nobody's data, kept to a day before `before` (ISO)."""
        result = await self._orders.delete_many({"kept_until": {"$lt": before}})
        return result.deleted_count
