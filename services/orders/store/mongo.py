"""The orders store on MongoDB: the service's own database in production.

Collections: `orders` (one document per order id, the `Order` with `_id` for `order_id`),
`customers` (buyers) and `recipients` (one profile per subject hash), and the erasure records
(`tombstones`, `erasure_reports`: shared/erasure/records.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel

from services.orders.domain import ROLES, Order, Profile, Role, retention
from shared.database import MongoDocuments, conditional_upsert, insert_new
from shared.erasure.records import MongoErasureRecords

PROFILE_COLLECTIONS: dict[Role, str] = {"buyer": "customers", "recipient": "recipients"}


class MongoOrdersStore:
    def __init__(self, documents: MongoDocuments) -> None:
        self._orders = documents["orders"]
        self._profiles = {role: documents[name] for role, name in PROFILE_COLLECTIONS.items()}
        self.erasures = MongoErasureRecords(documents)

    async def prepare(self) -> None:
        await self._orders.create_indexes(
            [
                IndexModel([("buyer_subject", ASCENDING), ("placed_at", DESCENDING)]),
                IndexModel([("recipient_subject", ASCENDING)], sparse=True),
                IndexModel([("erasures", ASCENDING)], sparse=True),
                IndexModel([("kept_until", ASCENDING)], sparse=True),
                # The recipients whose data expired: a range on when, then who is still named.
                IndexModel([("placed_at", ASCENDING), ("recipient_subject", ASCENDING)]),
            ]
        )
        for profiles in self._profiles.values():
            await profiles.create_indexes([IndexModel([("as_of", ASCENDING)])])
        await self.erasures.prepare()

    async def add_order(self, order: Order) -> bool:
        document = order.model_dump(exclude_none=True)
        return await insert_new(self._orders, document.pop("order_id"), document)

    async def update_profile(self, profile: Profile) -> bool:
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

    async def profile(self, role: Role, subject: str) -> Profile | None:
        document = await self._profiles[role].find_one({"_id": subject})
        if document is None:
            return None
        return Profile(
            subject=subject, role=role, as_of=document["as_of"], person=document["person"]
        )

    async def order(self, order_id: str) -> Order | None:
        document = await self._orders.find_one({"_id": order_id})
        return None if document is None else _order(document)

    async def orders_of(self, subject: str) -> list[Order]:
        query = {"$or": [{f"{role}_subject": subject} for role in ROLES]}
        orders = [_order(document) for document in await self._orders.find(query).to_list(None)]
        return sorted(orders, key=lambda order: order.placed_at, reverse=True)

    async def retained_orders(self, request_ids: Iterable[str]) -> list[Order]:
        cursor = self._orders.find({"erasures": {"$in": list(request_ids)}})
        orders = [_order(document) for document in await cursor.to_list(None)]
        return sorted(orders, key=lambda order: order.placed_at)

    async def erase_profiles(self, subject: str) -> None:
        for profiles in self._profiles.values():
            await profiles.delete_one({"_id": subject})

    async def erase_from_order(self, order: Order, role: Role, request_id: str | None) -> None:
        subject = order.subject(role)
        if subject is None:
            return
        kept = retention(order.placed_at)
        update: dict[str, Any] = {
            "$unset": {role: "", f"{role}_subject": ""},
            "$set": {"retention": kept},
        }
        if request_id is not None:
            update["$addToSet"] = {"erasures": request_id}
        await self._orders.update_one({"_id": order.order_id, f"{role}_subject": subject}, update)
        # A second step, after the first in every erasure, so that of two erasures of its two
        # people at once the later one always sees the order hold nobody's data.
        await self._orders.update_one(
            {"_id": order.order_id, **dict.fromkeys(ROLES)},
            {"$set": {"kept_until": kept["until"]}},
        )

    async def delete_expired_ledgers(self, before: str) -> int:
        result = await self._orders.delete_many({"kept_until": {"$lt": before}})
        return result.deleted_count

    async def count_expired_ledgers(self, before: str) -> int:
        return await self._orders.count_documents({"kept_until": {"$lt": before}})

    async def profiles_before(self, role: Role, before: datetime) -> list[str]:
        cursor = self._profiles[role].find({"as_of": {"$lt": before}}, {"as_of": 1})
        found = [(document["as_of"], document["_id"]) for document in await cursor.to_list(None)]
        return [subject for _, subject in sorted(found)]

    async def count_profiles_before(self, role: Role, before: datetime) -> int:
        return await self._profiles[role].count_documents({"as_of": {"$lt": before}})

    async def delete_profile_before(self, role: Role, subject: str, before: datetime) -> bool:
        result = await self._profiles[role].delete_one({"_id": subject, "as_of": {"$lt": before}})
        return result.deleted_count > 0

    def _recipients_before(self, before: datetime) -> dict[str, Any]:
        # An order's recipient is absent once stripped (an erasure or an expiry unsets them).
        return {"placed_at": {"$lt": before}, "recipient_subject": {"$exists": True}}

    async def orders_with_recipient_before(self, before: datetime) -> list[Order]:
        cursor = self._orders.find(self._recipients_before(before))
        orders = [_order(document) for document in await cursor.to_list(None)]
        return sorted(orders, key=lambda order: (order.placed_at, order.order_id))

    async def count_orders_with_recipient_before(self, before: datetime) -> int:
        return await self._orders.count_documents(self._recipients_before(before))


def _order(document: dict[str, Any]) -> Order:
    # An erasure unsets the person's fields: absent means None.
    absent = {field: None for role in ROLES for field in (role, f"{role}_subject")}
    fields = {key: value for key, value in document.items() if key != "_id"}
    return Order.model_validate({**absent, **fields, "order_id": document["_id"]})
