"""The consent service's MongoDB database; the only code that touches it.

Collections:
- `consent_history`: append-only facts, one per event and topic (`<event_id>:<purpose>` or
  `<event_id>:objection`), each with when it was recorded. Never changed or deleted here.
- `people`: per subject hash, the projection of the person's facts (`permissions`, `objection`,
  `may_contact`, built from `facts_seen` facts), the buyer's `contact` from their latest order
  with `addressable` true, and `announced`, the summary last published as `consent.changed`.

The audience export is everyone with the purpose in `may_contact` and `addressable` true, read
with one cursor over the index on (`may_contact`, `addressable`, `_id`), a page at a time.

Erasing a person deletes their facts and their document in `people`, so they drop out of every
export at once; `suppressions` keeps, per subject hash, since when an erased person who had
objected stays suppressed. Tombstones and erasure reports: shared/erasure.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.errors import BulkWriteError

from services.consent.domain import FACT, AnyFact, ConsentState, Person
from shared.contracts.consent import ConsentSummary, Contact, Purpose
from shared.database import Database, conditional_upsert, conditional_upsert_returning
from shared.erasure import ErasureRecords, aware

DUPLICATE_KEY = 11000
ADDRESSABLE = "addressable"
"""True while the register may address the person: an order gave their name, no erasure since."""


class ConsentStore:
    def __init__(self, database: Database) -> None:
        self._history = database["consent_history"]
        self._people = database["people"]
        self._suppressions = database["suppressions"]
        self.erasures = ErasureRecords(database)

    async def create_indexes(self) -> None:
        await self._history.create_indexes(
            [IndexModel([("subject", ASCENDING), ("occurred_at", ASCENDING)])]
        )
        await self._people.create_indexes(
            [IndexModel([("may_contact", ASCENDING), (ADDRESSABLE, ASCENDING), ("_id", ASCENDING)])]
        )

    # --- history -------------------------------------------------------------------------------

    async def append_facts(self, subject: str, facts: list[AnyFact]) -> int:
        """Record facts not seen before; returns how many were new. History is never changed.

        One unordered insert: a fact already recorded (a redelivered event) fails on its `_id`
        alone, and the others go in all the same.
        """
        if not facts:
            return 0
        recorded_at = datetime.now(UTC)
        documents = [
            {
                "_id": fact.fact_id,
                **fact.model_dump(),
                "subject": subject,
                "recorded_at": recorded_at,
            }
            for fact in facts
        ]
        try:
            result = await self._history.insert_many(documents, ordered=False)
        except BulkWriteError as error:
            if any(e["code"] != DUPLICATE_KEY for e in error.details["writeErrors"]):
                raise
            return int(error.details["nInserted"])
        return len(result.inserted_ids)

    async def facts_of(self, subject: str) -> list[AnyFact]:
        cursor = self._history.find({"subject": subject}).sort("occurred_at", ASCENDING)
        return [FACT.validate_python(document) async for document in cursor]

    # --- people --------------------------------------------------------------------------------

    async def save_state(self, subject: str, state: ConsentState, facts_seen: int) -> Person | None:
        """Store a projection unless one built from at least as many facts is stored; returns
        the person as stored afterwards, whichever projection won (None: erased meanwhile).

        History only grows, so a projection built from more facts includes every fact of one
        built from fewer: this keeps concurrent writers from rolling the state back.
        """
        document = await conditional_upsert_returning(
            self._people,
            subject,
            {"$or": [{"facts_seen": {"$lt": facts_seen}}, {"facts_seen": {"$exists": False}}]},
            {
                "$set": {
                    **state.model_dump(),
                    "may_contact": state.may_contact,
                    "facts_seen": facts_seen,
                }
            },
        )
        return None if document is None else _person(subject, document)

    async def save_contact(
        self, subject: str, contact: Contact, as_of: datetime, event_id: str
    ) -> None:
        """Keep the contact details of the latest order (by when it happened, then event id)."""
        await conditional_upsert(
            self._people,
            subject,
            {
                "$or": [
                    {"contact_as_of": {"$exists": False}},
                    {"contact_as_of": {"$lt": as_of}},
                    {"contact_as_of": as_of, "contact_event_id": {"$lt": event_id}},
                ]
            },
            {
                "$set": {
                    "contact": contact.model_dump(),
                    ADDRESSABLE: True,
                    "contact_as_of": as_of,
                    "contact_event_id": event_id,
                }
            },
        )

    async def person(self, subject: str) -> Person | None:
        document = await self._people.find_one({"_id": subject})
        return None if document is None else _person(subject, document)

    async def mark_announced(self, subject: str, summary: ConsentSummary, version: int) -> None:
        """Remember what was published, unless a newer projection has been stored meanwhile."""
        await self._people.update_one(
            {"_id": subject, "facts_seen": version}, {"$set": {"announced": summary.model_dump()}}
        )

    # --- the audience ----------------------------------------------------------------------------

    def _audience_query(self, purpose: Purpose) -> dict[str, Any]:
        # Someone known only from consent events has no name to address them by yet.
        return {"may_contact": purpose, ADDRESSABLE: True}

    async def count_audience(self, purpose: Purpose) -> int:
        return await self._people.count_documents(self._audience_query(purpose))

    async def audience(
        self, purpose: Purpose, page_size: int
    ) -> AsyncIterator[list[dict[str, str]]]:
        """Everyone who may be contacted for `purpose` as `Contact` fields, a page at a time.

        One cursor over the audience index in subject-hash order, fetched from the server a page
        at a time. The contacts were validated when stored; they are passed on as they are.
        """
        cursor = (
            self._people.find(self._audience_query(purpose), {"contact": 1})
            .sort("_id", ASCENDING)
            .batch_size(page_size)
        )
        page: list[dict[str, str]] = []
        async with cursor:
            async for document in cursor:
                page.append(document["contact"])
                if len(page) == page_size:
                    yield page
                    page = []
        if page:
            yield page

    # --- erasure -------------------------------------------------------------------------------

    async def count_facts(self, subject: str) -> int:
        return await self._history.count_documents({"subject": subject})

    async def erase_person(self, subject: str) -> None:
        await self._history.delete_many({"subject": subject})
        await self._people.delete_one({"_id": subject})

    async def suppress(self, subject: str, since: datetime) -> None:
        await self._suppressions.update_one(
            {"_id": subject}, {"$set": {"since": since}}, upsert=True
        )

    async def keep_suppressed_from(self, subject: str, since: datetime) -> bool:
        """Keep the person suppressed from `since` on at the latest: a new suppression, or one
        standing since earlier moved to `since` (so that an erasure at `since` that is still
        being carried out does not lift it). True if anything changed."""
        result = await self._suppressions.update_one(
            {"_id": subject}, {"$max": {"since": since}}, upsert=True
        )
        return result.upserted_id is not None or result.modified_count > 0

    async def lift_suppression(self, subject: str, before: datetime) -> None:
        """Lift the person's suppression if it stands since before `before`."""
        await self._suppressions.delete_one({"_id": subject, "since": {"$lt": before}})

    async def suppressed_since(self, subject: str) -> datetime | None:
        document = await self._suppressions.find_one({"_id": subject})
        return None if document is None else aware(document["since"])


def _person(subject: str, document: dict[str, Any]) -> Person:
    contact = document.get("contact")
    return Person(
        subject=subject,
        state=ConsentState.model_validate(
            {"permissions": document.get("permissions", {}), "objection": document.get("objection")}
        ),
        version=document.get("facts_seen", 0),
        announced=ConsentSummary.model_validate(document.get("announced", {})),
        contact=None if contact is None else Contact.model_validate(contact),
    )
