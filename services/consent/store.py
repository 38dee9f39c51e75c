"""The consent service's MongoDB database; the only code that touches it.

Collections: `consent_history` (append-only facts, one per event and purpose) and `people`
(per subject hash: the projected permissions and the buyer's contact details).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel

from services.consent.domain import ConsentFact, Contact, Permission, Purpose
from shared.database import Database, conditional_upsert


class ConsentStore:
    def __init__(self, database: Database) -> None:
        self._history = database["consent_history"]
        self._people = database["people"]

    async def create_indexes(self) -> None:
        await self._history.create_indexes(
            [IndexModel([("subject", ASCENDING), ("occurred_at", ASCENDING)])]
        )

    async def append_facts(self, subject: str, facts: list[ConsentFact]) -> int:
        """Record facts not seen before; returns how many were new. History is never changed."""
        recorded_at = datetime.now(UTC)
        new = 0
        for fact in facts:
            document = {**fact.model_dump(), "subject": subject, "recorded_at": recorded_at}
            result = await self._history.update_one(
                {"_id": fact.fact_id}, {"$setOnInsert": document}, upsert=True
            )
            new += result.upserted_id is not None
        return new

    async def facts_of(self, subject: str) -> list[ConsentFact]:
        cursor = self._history.find({"subject": subject}).sort("occurred_at", ASCENDING)
        return [ConsentFact.model_validate(document) async for document in cursor]

    async def save_permissions(
        self, subject: str, permissions: dict[Purpose, Permission], facts_seen: int
    ) -> None:
        """Store a projection unless one built from at least as many facts is stored.

        History only grows, so a projection built from more facts includes every fact of one
        built from fewer: this keeps concurrent writers from rolling the state back.
        """
        await conditional_upsert(
            self._people,
            subject,
            {
                "$or": [
                    {"facts_seen": {"$lt": facts_seen}},
                    {"facts_seen": {"$exists": False}},
                ]
            },
            {
                "$set": {
                    "permissions": {k: v.model_dump() for k, v in permissions.items()},
                    "facts_seen": facts_seen,
                }
            },
        )

    async def save_contact(self, subject: str, contact: Contact, as_of: datetime) -> None:
        """Keep the contact details of the latest event that carried them."""
        await conditional_upsert(
            self._people,
            subject,
            {
                "$or": [
                    {"contact_as_of": {"$lt": as_of}},
                    {"contact_as_of": {"$exists": False}},
                ]
            },
            {"$set": {"contact": contact.model_dump(), "contact_as_of": as_of}},
        )

    async def person(self, subject: str) -> dict[str, Any] | None:
        return await self._people.find_one({"_id": subject})
