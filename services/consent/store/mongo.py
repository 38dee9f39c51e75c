"""The consent store on MongoDB: the service's own database in production.

Collections:
- `consent_history`: one document per fact (`_id` its `fact_id`), with the subject hash and
  when it was recorded. Never changed; deleted only with the person.
- `people`: per subject hash (`_id`), the projection (`permissions`, `objection`, and
  `may_contact` beside them for the audience index, built from `facts_seen` facts), the
  buyer's `contact` from their latest order (`contact_as_of`, `contact_event_id`) with
  `addressable` true, and `announced`, the summary last published as `consent.changed`.
- `suppressions`: `{_id: subject hash, since}`.
- `activity`: `{_id: subject hash, last_at}`, when the person's latest fact or order happened,
  raised (`$max`) by every write of one; a database from before it was kept gets it filled in
  from `people` and `consent_history` at the first start that finds it empty.

The audience export is everyone with the purpose in `may_contact` and `addressable` true, read
with one cursor over the index on (`may_contact`, `addressable`, `_id`), a page at a time.
Tombstones and erasure reports: shared/erasure/records.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import BulkWriteError

from services.consent.domain import FACT, AnyFact, ConsentState, Person
from shared.contracts.consent import ConsentSummary, Contact, Purpose
from shared.database import MongoDocuments, conditional_upsert, conditional_upsert_returning
from shared.erasure.records import MongoErasureRecords
from shared.times import aware

DUPLICATE_KEY = 11000
ADDRESSABLE = "addressable"
"""True while the register may address the person: an order gave their name, no erasure since."""


class MongoConsentStore:
    def __init__(self, documents: MongoDocuments) -> None:
        self._history = documents["consent_history"]
        self._people = documents["people"]
        self._suppressions = documents["suppressions"]
        self._activity = documents["activity"]
        self.erasures = MongoErasureRecords(documents)

    async def prepare(self) -> None:
        await self._history.create_indexes(
            [IndexModel([("subject", ASCENDING), ("occurred_at", ASCENDING)])]
        )
        await self._people.create_indexes(
            [IndexModel([("may_contact", ASCENDING), (ADDRESSABLE, ASCENDING), ("_id", ASCENDING)])]
        )
        await self._activity.create_indexes([IndexModel([("last_at", ASCENDING)])])
        await self.erasures.prepare()
        if await self._activity.find_one({}) is None:
            await self._fill_activity()

    async def _fill_activity(self) -> None:
        """Each person's activity, from their contact and their latest fact."""
        async for person in self._people.find({}, {"contact_as_of": 1}):
            cursor = (
                self._history.find({"subject": person["_id"]}, {"occurred_at": 1})
                .sort("occurred_at", DESCENDING)
                .limit(1)
            )
            moments = [fact["occurred_at"] async for fact in cursor]
            if person.get("contact_as_of") is not None:
                moments.append(person["contact_as_of"])
            if moments:
                await self._note_activity(person["_id"], max(aware(m) for m in moments))

    async def _note_activity(self, subject: str, at: datetime) -> None:
        await self._activity.update_one({"_id": subject}, {"$max": {"last_at": at}}, upsert=True)

    # --- history -------------------------------------------------------------------------------

    async def append_facts(self, subject: str, facts: list[AnyFact]) -> int:
        # One unordered insert: a fact already recorded (a redelivered event) fails on its `_id`
        # alone, and the others go in all the same.
        if not facts:
            return 0
        await self._note_activity(subject, max(fact.occurred_at for fact in facts))
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
        facts = [FACT.validate_python(document) async for document in cursor]
        # The index orders by time alone; ties are put in the order both adapters give.
        return sorted(facts, key=lambda fact: (*fact.position, fact.topic))

    async def count_facts(self, subject: str) -> int:
        return await self._history.count_documents({"subject": subject})

    # --- people --------------------------------------------------------------------------------

    async def save_state(self, subject: str, state: ConsentState, facts_seen: int) -> Person | None:
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
    ) -> bool:
        await self._note_activity(subject, as_of)
        return await conditional_upsert(
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
        # One cursor, fetched from the server a batch (a page) at a time.
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

    # --- erasure and suppressions --------------------------------------------------------------

    async def erase_person(self, subject: str) -> None:
        await self._history.delete_many({"subject": subject})
        await self._people.delete_one({"_id": subject})
        await self._activity.delete_one({"_id": subject})

    async def suppress(self, subject: str, since: datetime) -> None:
        await self._suppressions.update_one(
            {"_id": subject}, {"$set": {"since": since}}, upsert=True
        )

    async def keep_suppressed_from(self, subject: str, since: datetime) -> bool:
        result = await self._suppressions.update_one(
            {"_id": subject}, {"$max": {"since": since}}, upsert=True
        )
        return result.upserted_id is not None or result.modified_count > 0

    async def lift_suppression(self, subject: str, before: datetime) -> None:
        await self._suppressions.delete_one({"_id": subject, "since": {"$lt": before}})

    async def suppressed_since(self, subject: str) -> datetime | None:
        document = await self._suppressions.find_one({"_id": subject})
        return None if document is None else aware(document["since"])

    # --- activity (the retention sweep) --------------------------------------------------------

    async def last_activity(self, subject: str) -> datetime | None:
        document = await self._activity.find_one({"_id": subject})
        return None if document is None else aware(document["last_at"])

    async def inactive_before(self, before: datetime) -> list[str]:
        cursor = self._activity.find({"last_at": {"$lt": before}})
        found = [(aware(d["last_at"]), d["_id"]) for d in await cursor.to_list(None)]
        return [subject for _, subject in sorted(found)]

    async def count_inactive_before(self, before: datetime) -> int:
        return await self._activity.count_documents({"last_at": {"$lt": before}})


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
