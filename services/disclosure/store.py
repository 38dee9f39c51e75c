"""The disclosure service's MongoDB database; the only code that touches it.

Collections: `providers` (the registry) and `disclosures` (the disclosure log: one document
per order and provider). A sent disclosure's log entry names the people by subject hash and
lists the fields sent; it keeps no copy of the data. A held one keeps the data it will send
(`pending`) until it is released; releasing claims it first (`held` → `releasing`, atomically),
so two releases can never both send it.

When a person is erased, their held disclosures are cancelled (`cancelled`, the held copy of the
data deleted), and in every log entry their subject hash is replaced by `erased:<request id>`:
the log still proves to whom the data of the erased person was disclosed, without naming them.
Once an entry names nobody, `kept_until` says the last day it is kept (that of the order's
ledger lines, from `placed_at`); the retention sweep deletes it after that day.
Tombstones and erasure reports: shared/erasure.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from shared.contracts.disclosure_ops import HeldDisclosure, SentDisclosure
from shared.contracts.disclosures import Disclosure
from shared.contracts.providers import Provider
from shared.database import Database
from shared.erasure import ErasureRecords

SENT = "sent"
HELD = "held"
RELEASING = "releasing"
CANCELLED = "cancelled"
NOT_SENT = [HELD, RELEASING]
# A release that crashed after claiming a disclosure leaves it `releasing`; after this long
# another release may claim it again (and, if the first did publish, send it a second time
# with the same disclosure id: delivery is at least once).
RELEASE_LEASE = timedelta(minutes=1)


class DisclosureStore:
    def __init__(self, database: Database) -> None:
        self._providers = database["providers"]
        self._disclosures = database["disclosures"]
        self.erasures = ErasureRecords(database)

    async def create_indexes(self) -> None:
        await self._disclosures.create_indexes(
            [
                # One order's held disclosures; all held ones; what a provider or person got.
                IndexModel(
                    [("order_id", ASCENDING), ("status", ASCENDING), ("recorded_at", ASCENDING)]
                ),
                IndexModel([("status", ASCENDING), ("recorded_at", ASCENDING)]),
                IndexModel(
                    [("provider_id", ASCENDING), ("status", ASCENDING), ("sent_at", DESCENDING)]
                ),
                IndexModel(
                    [("subjects", ASCENDING), ("status", ASCENDING), ("sent_at", DESCENDING)]
                ),
                IndexModel([("kept_until", ASCENDING)], sparse=True),
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

    async def provider(self, provider_id: str) -> Provider | None:
        document = await self._providers.find_one({"_id": provider_id})
        return None if document is None else _provider(document)

    async def providers(self, provider_ids: Iterable[str] | None = None) -> list[Provider]:
        query = {} if provider_ids is None else {"_id": {"$in": list(provider_ids)}}
        cursor = self._providers.find(query).sort("_id", ASCENDING)
        return [_provider(document) async for document in cursor]

    async def change_provider(
        self, provider_id: str, changes: dict[str, Any], actor: str, now: datetime
    ) -> Provider | None:
        """Set only the fields given, so concurrent changes of other fields are not undone."""
        document = await self._providers.find_one_and_update(
            {"_id": provider_id},
            {"$set": {**changes, "changed_at": now, "changed_by": actor}},
            return_document=ReturnDocument.AFTER,
        )
        return None if document is None else _provider(document)

    # --- disclosure log ------------------------------------------------------------------------

    async def is_recorded(self, disclosure_id: str) -> bool:
        return await self._disclosures.find_one({"_id": disclosure_id}, {"_id": 1}) is not None

    async def record_sent(
        self,
        disclosure: Disclosure,
        subjects: list[str],
        fields: list[str],
        now: datetime,
        released_by: str | None = None,
    ) -> None:
        """Log the disclosure as sent, dropping the held copy of the data if there was one.

        Most disclosures are sent at once: their line is new, one insert. A released one, or a
        repeat after a crash, finds its line there and updates it.
        """
        released = {} if released_by is None else {"released_by": released_by}
        sent = {
            **_log_entry(disclosure, subjects),
            **released,
            "status": SENT,
            "fields": fields,
            "sent_at": now,
        }
        disclosure_id = str(disclosure.disclosure_id)
        try:
            await self._disclosures.insert_one({"_id": disclosure_id, **sent, "recorded_at": now})
        except DuplicateKeyError:
            await self._disclosures.update_one(
                {"_id": disclosure_id},
                {
                    "$set": sent,
                    "$unset": {"pending": "", "hold_reason": "", "claimed_at": ""},
                },
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

    async def held(self, order_id: str | None = None) -> list[HeldDisclosure]:
        """Disclosures not sent yet (all, or one order's), oldest first, without their data."""
        query: dict[str, Any] = {"status": {"$in": NOT_SENT}}
        if order_id is not None:
            query["order_id"] = order_id
        cursor = self._disclosures.find(query, {"pending": 0}).sort("recorded_at", ASCENDING)
        return [_held(document) async for document in cursor]

    async def note_hold_reason(self, disclosure_id: str, reason: str) -> None:
        await self._disclosures.update_one(
            {"_id": disclosure_id, "status": HELD}, {"$set": {"hold_reason": reason}}
        )

    async def claim_for_release(self, disclosure_id: str, now: datetime) -> Disclosure | None:
        """Take a held disclosure for sending, or None when another release has it or it is sent.

        One conditional update decides, so of two concurrent releases exactly one wins.
        """
        document = await self._disclosures.find_one_and_update(
            {
                "_id": disclosure_id,
                "$or": [
                    {"status": HELD},
                    {"status": RELEASING, "claimed_at": {"$lt": now - RELEASE_LEASE}},
                ],
            },
            {"$set": {"status": RELEASING, "claimed_at": now}},
            return_document=ReturnDocument.AFTER,
        )
        if document is None:
            return None
        return Disclosure.model_validate(document["pending"], strict=False)

    async def give_back(self, disclosure_id: str) -> None:
        """A claimed disclosure that could not be sent is held again."""
        await self._disclosures.update_one(
            {"_id": disclosure_id, "status": RELEASING},
            {"$set": {"status": HELD}, "$unset": {"claimed_at": ""}},
        )

    async def sent(
        self,
        *,
        subject: str | list[str] | None = None,
        provider_id: str | None = None,
        limit: int | None = None,
    ) -> list[SentDisclosure]:
        """Sent disclosures of one person (or of any of several names for them) or to one
        provider, newest first."""
        query: dict[str, Any] = {"status": SENT}
        if subject is not None:
            query["subjects"] = subject if isinstance(subject, str) else {"$in": subject}
        if provider_id is not None:
            query["provider_id"] = provider_id
        cursor = self._disclosures.find(query).sort("sent_at", DESCENDING)
        if limit is not None:
            cursor = cursor.limit(limit)
        return [_sent(document) async for document in cursor]

    async def held_of(self, subject: str) -> list[HeldDisclosure]:
        """The person's disclosures not sent yet, without their data."""
        cursor = self._disclosures.find(
            {"subjects": subject, "status": {"$in": NOT_SENT}}, {"pending": 0}
        )
        return [_held(document) async for document in cursor]

    async def cancel_held(self, subject: str, reason: str) -> None:
        """Never send the person's held disclosures; their held copy of the data goes."""
        await self._disclosures.update_many(
            {"subjects": subject, "status": {"$in": NOT_SENT}},
            {
                "$set": {"status": CANCELLED, "hold_reason": reason},
                "$unset": {"pending": "", "claimed_at": ""},
            },
        )

    async def replace_subject(self, subject: str, reference: str) -> None:
        """Put `reference` in place of the person's hash in every log entry that names them."""
        # Two steps (MongoDB cannot add to and pull from one array in one update); repeating
        # them after a crash in between finishes the job.
        await self._disclosures.update_many(
            {"subjects": subject}, {"$addToSet": {"subjects": reference}}
        )
        await self._disclosures.update_many({"subjects": subject}, {"$pull": {"subjects": subject}})

    async def entries_naming(self, subject: str) -> list[dict[str, Any]]:
        """The log entries that name `subject` (a hash or an erased person's reference): who
        else they name and when their order was placed."""
        cursor = self._disclosures.find({"subjects": subject}, {"subjects": 1, "placed_at": 1})
        return await cursor.to_list(None)

    async def keep_until(self, disclosure_id: str, until: str) -> None:
        await self._disclosures.update_one({"_id": disclosure_id}, {"$set": {"kept_until": until}})

    async def delete_expired_entries(self, before: str) -> int:
        """Delete the entries that name nobody and are kept to a day before `before` (ISO)."""
        result = await self._disclosures.delete_many({"kept_until": {"$lt": before}})
        return result.deleted_count


def _log_entry(disclosure: Disclosure, subjects: list[str]) -> dict[str, Any]:
    return {
        "order_id": disclosure.order_id,
        "provider_id": disclosure.provider_id,
        "message_id": str(disclosure.disclosure_id),
        "subjects": subjects,
        "product_ids": [item.product_id for item in disclosure.items],
        "placed_at": disclosure.occurred_at,
    }


def _provider(document: dict[str, Any]) -> Provider:
    fields = {key: value for key, value in document.items() if key != "_id"}
    return Provider.model_validate({**fields, "provider_id": document["_id"]}, strict=False)


def _held(document: dict[str, Any]) -> HeldDisclosure:
    return HeldDisclosure(
        disclosure_id=document["_id"],
        order_id=document["order_id"],
        provider_id=document["provider_id"],
        status=document["status"],
        reason=document["hold_reason"],
        held_since=document["recorded_at"],
    )


def _sent(document: dict[str, Any]) -> SentDisclosure:
    return SentDisclosure(
        disclosure_id=document["_id"],
        order_id=document["order_id"],
        provider_id=document["provider_id"],
        sent_at=document["sent_at"],
        fields=document["fields"],
        product_ids=document["product_ids"],
        message_id=document["message_id"],
    )
