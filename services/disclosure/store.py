"""The disclosure service's MongoDB database; the only code that touches it.

Collections: `providers` (the registry) and `disclosures` (the disclosure log: one document
per order and provider, sent or held). A sent disclosure's log entry names the people by
subject hash and lists the fields sent; it keeps no copy of the data. A held one keeps the
data it will send until it is released.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from shared.contracts.disclosures import Disclosure
from shared.contracts.providers import Provider
from shared.database import Database

SENT = "sent"
HELD = "held"


class DisclosureStore:
    def __init__(self, database: Database) -> None:
        self._providers = database["providers"]
        self._disclosures = database["disclosures"]

    async def create_indexes(self) -> None:
        await self._disclosures.create_indexes(
            [
                IndexModel([("order_id", ASCENDING)]),
                IndexModel([("provider_id", ASCENDING), ("recorded_at", DESCENDING)]),
                IndexModel([("subjects", ASCENDING), ("recorded_at", DESCENDING)]),
                IndexModel([("status", ASCENDING), ("recorded_at", ASCENDING)]),
            ]
        )

    # --- providers -----------------------------------------------------------------------------

    async def add_provider(self, provider: Provider) -> bool:
        """False when the id is taken: a registration never overwrites another."""
        document = provider.model_dump()
        document["_id"] = document.pop("provider_id")
        try:
            await self._providers.insert_one(document)
        except DuplicateKeyError:
            return False
        return True

    async def providers(self, provider_ids: Iterable[str] | None = None) -> list[Provider]:
        query = {} if provider_ids is None else {"_id": {"$in": list(provider_ids)}}
        cursor = self._providers.find(query).sort("_id", ASCENDING)
        return [_provider(document) async for document in cursor]

    # --- disclosure log ------------------------------------------------------------------------

    async def is_recorded(self, disclosure_id: str) -> bool:
        return await self._disclosures.find_one({"_id": disclosure_id}, {"_id": 1}) is not None

    async def record_sent(
        self,
        disclosure: Disclosure,
        subjects: list[str],
        fields: list[str],
        now: datetime,
    ) -> None:
        await self._disclosures.update_one(
            {"_id": str(disclosure.disclosure_id)},
            {
                "$set": {
                    **_log_entry(disclosure, subjects),
                    "status": SENT,
                    "fields": fields,
                    "sent_at": now,
                },
                "$setOnInsert": {"recorded_at": now},
                "$unset": {"pending": "", "hold_reason": ""},
            },
            upsert=True,
        )

    async def record_held(
        self, disclosure: Disclosure, subjects: list[str], reason: str, now: datetime
    ) -> None:
        await self._disclosures.update_one(
            {"_id": str(disclosure.disclosure_id)},
            {
                "$setOnInsert": {
                    **_log_entry(disclosure, subjects),
                    "status": HELD,
                    "hold_reason": reason,
                    "recorded_at": now,
                    "pending": disclosure.model_dump(mode="json"),
                }
            },
            upsert=True,
        )

    async def disclosures_of_order(self, order_id: str) -> list[dict[str, Any]]:
        cursor = self._disclosures.find({"order_id": order_id}).sort("_id", ASCENDING)
        return await cursor.to_list(None)


def _log_entry(disclosure: Disclosure, subjects: list[str]) -> dict[str, Any]:
    return {
        "order_id": disclosure.order_id,
        "provider_id": disclosure.provider_id,
        "message_id": str(disclosure.disclosure_id),
        "subjects": subjects,
        "product_ids": [item.product_id for item in disclosure.items],
    }


def _provider(document: dict[str, Any]) -> Provider:
    fields = {key: value for key, value in document.items() if key != "_id"}
    return Provider.model_validate({**fields, "provider_id": document["_id"]}, strict=False)
