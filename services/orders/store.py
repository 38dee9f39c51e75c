"""The orders service's MongoDB database; the only code that touches it.

Collections: `orders` (one document per order id), `customers` (buyers) and `recipients`
(one profile per subject hash).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel

from services.orders.domain import Order, Profile, Role
from shared.database import Database, conditional_upsert

PROFILE_COLLECTIONS: dict[Role, str] = {"buyer": "customers", "recipient": "recipients"}


class OrdersStore:
    def __init__(self, database: Database) -> None:
        self._orders = database["orders"]
        self._profiles = {role: database[name] for role, name in PROFILE_COLLECTIONS.items()}

    async def create_indexes(self) -> None:
        await self._orders.create_indexes(
            [
                IndexModel([("buyer_subject", ASCENDING), ("placed_at", DESCENDING)]),
                IndexModel([("recipient_subject", ASCENDING)], sparse=True),
            ]
        )

    async def add_order(self, order: Order) -> bool:
        """Store the order unless its id is known; True when it was new."""
        document = order.model_dump()
        document["_id"] = document.pop("order_id")
        result = await self._orders.update_one(
            {"_id": document["_id"]}, {"$setOnInsert": document}, upsert=True
        )
        return result.upserted_id is not None

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
