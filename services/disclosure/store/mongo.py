"""The disclosure store on MongoDB: the service's own database in production.

Collections: `providers` (the registry, `_id` the provider id) and `disclosures` (the log: one
document per order and provider, `_id` the disclosure id, the people's hashes in `subjects` and,
beside them, `people`: each with their role on the order, `[{subject, role}]`; the held copy of
the data in `pending`), and the erasure records (shared/erasure/records.py). An entry logged
before roles were has no `people`: its people's roles are unknown.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.disclosure.domain import disclosed_fields
from services.disclosure.store.port import (
    CANCELLED,
    HELD,
    NOT_SENT,
    PROVIDER_FIELDS,
    RELEASE_LEASE,
    RELEASING,
    SENT,
    LogEntry,
    Named,
    NamedEntry,
    People,
    people_of,
)
from shared.contracts.disclosure_ops import HeldDisclosure, SentDisclosure
from shared.contracts.disclosures import Disclosure
from shared.contracts.providers import Provider
from shared.database import MongoDocuments, insert_new
from shared.erasure.records import MongoErasureRecords
from shared.times import aware


class MongoDisclosureStore:
    def __init__(self, documents: MongoDocuments) -> None:
        self._providers = documents["providers"]
        self._disclosures = documents["disclosures"]
        self.erasures = MongoErasureRecords(documents)

    async def prepare(self) -> None:
        await self._disclosures.create_indexes(
            [
                # One order's log and held disclosures; all held ones; what a provider or a
                # person got, newest first (`_id` breaks ties, so a limit cuts the same list).
                IndexModel(
                    [("order_id", ASCENDING), ("status", ASCENDING), ("recorded_at", ASCENDING)]
                ),
                IndexModel([("status", ASCENDING), ("recorded_at", ASCENDING)]),
                IndexModel(
                    [
                        ("provider_id", ASCENDING),
                        ("status", ASCENDING),
                        ("sent_at", DESCENDING),
                        ("_id", ASCENDING),
                    ]
                ),
                IndexModel(
                    [
                        ("subjects", ASCENDING),
                        ("status", ASCENDING),
                        ("sent_at", DESCENDING),
                        ("_id", ASCENDING),
                    ]
                ),
                IndexModel([("kept_until", ASCENDING)], sparse=True),
                # The log's retention runs from its order's date: the sweep's search.
                IndexModel([("placed_at", ASCENDING)]),
            ]
        )
        await self.erasures.prepare()

    # --- providers -----------------------------------------------------------------------------

    async def add_provider(self, provider: Provider) -> bool:
        document = provider.model_dump()
        return await insert_new(self._providers, document.pop("provider_id"), document)

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
        _check_provider_fields(changes)
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
        self, disclosure: Disclosure, people: People, now: datetime, released_by: str | None = None
    ) -> None:
        fields = disclosed_fields(disclosure)
        # Most disclosures are sent at once: their entry is new, one insert. A released one, or
        # a repeat after a crash, finds its entry there and updates it.
        released = {} if released_by is None else {"released_by": released_by}
        sent = {
            **_log_entry(disclosure, people),
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
        self, disclosure: Disclosure, people: People, reason: str, now: datetime
    ) -> None:
        # Filtered on `_id` alone: the server retries an upsert that races another by itself.
        await self._disclosures.update_one(
            {"_id": str(disclosure.disclosure_id)},
            {
                "$setOnInsert": {
                    **_log_entry(disclosure, people),
                    "status": HELD,
                    "hold_reason": reason,
                    "recorded_at": now,
                    "pending": disclosure.model_dump(mode="json"),
                }
            },
            upsert=True,
        )

    async def held(self, order_id: str | None = None) -> list[HeldDisclosure]:
        query: dict[str, Any] = {"status": {"$in": list(NOT_SENT)}}
        if order_id is not None:
            query["order_id"] = order_id
        return await self._held(query)

    async def note_hold_reason(self, disclosure_id: str, reason: str) -> None:
        await self._disclosures.update_one(
            {"_id": disclosure_id, "status": HELD}, {"$set": {"hold_reason": reason}}
        )

    async def claim_for_release(self, disclosure_id: str, now: datetime) -> Disclosure | None:
        # One conditional update decides, so of two concurrent releases exactly one wins.
        document = await self._disclosures.find_one_and_update(
            {
                "_id": disclosure_id,
                "$or": [
                    {"status": HELD},
                    {"status": RELEASING, "claimed_at": {"$lt": now - RELEASE_LEASE}},
                ],
            },
            {"$set": {"status": RELEASING, "claimed_at": now}},
            projection={"pending": 1},
            return_document=ReturnDocument.AFTER,
        )
        if document is None:
            return None
        return Disclosure.model_validate(document["pending"], strict=False)

    async def give_back(self, disclosure_id: str) -> None:
        await self._disclosures.update_one(
            {"_id": disclosure_id, "status": RELEASING},
            {"$set": {"status": HELD}, "$unset": {"claimed_at": ""}},
        )

    async def sent_naming(
        self, subject: str | list[str], limit: int | None = None
    ) -> list[SentDisclosure]:
        names = subject if isinstance(subject, str) else {"$in": subject}
        return await self._sent({"subjects": names}, limit)

    async def sent_to(self, provider_id: str, limit: int | None = None) -> list[SentDisclosure]:
        return await self._sent({"provider_id": provider_id}, limit)

    async def _sent(self, query: dict[str, Any], limit: int | None) -> list[SentDisclosure]:
        cursor = self._disclosures.find({**query, "status": SENT}, {"pending": 0}).sort(
            [("sent_at", DESCENDING), ("_id", ASCENDING)]
        )
        if limit is not None:
            cursor = cursor.limit(limit)
        return [_sent(document) async for document in cursor]

    async def held_of(self, subject: str) -> list[HeldDisclosure]:
        return await self._held({"subjects": subject, "status": {"$in": list(NOT_SENT)}})

    async def cancel_held(self, subject: str, reason: str) -> None:
        await self._disclosures.update_many(
            {"subjects": subject, "status": {"$in": list(NOT_SENT)}},
            {
                "$set": {"status": CANCELLED, "hold_reason": reason},
                "$unset": {"pending": "", "claimed_at": ""},
            },
        )

    async def replace_subject(self, subject: str, reference: str) -> None:
        # Each entry's `people` first, their roles kept; then `subjects`, by which a repeat
        # after a crash still finds the entries left to do.
        cursor = self._disclosures.find({"subjects": subject}, {"people": 1})
        for document in await cursor.to_list(None):
            people = [
                Named(reference, person.role) if person.subject == subject else person
                for person in _people(document)
            ]
            await self._disclosures.update_one(
                {"_id": document["_id"]}, {"$set": {"people": _people_documents(people)}}
            )
        # Two steps (MongoDB cannot add to and pull from one array in one update); repeating
        # them after a crash in between finishes the job.
        await self._disclosures.update_many(
            {"subjects": subject}, {"$addToSet": {"subjects": reference}}
        )
        await self._disclosures.update_many({"subjects": subject}, {"$pull": {"subjects": subject}})

    async def entries_naming(self, subject: str) -> list[NamedEntry]:
        cursor = self._disclosures.find({"subjects": subject}, {"subjects": 1, "placed_at": 1})
        entries = [
            NamedEntry(
                disclosure_id=document["_id"],
                subjects=_subjects(document),
                placed_at=_moment(document.get("placed_at")),
            )
            async for document in cursor
        ]
        return sorted(entries, key=lambda entry: entry.disclosure_id)

    async def log_of(self, order_id: str) -> list[LogEntry]:
        cursor = self._disclosures.find({"order_id": order_id})
        entries = [_entry(document) async for document in cursor]
        return sorted(entries, key=lambda entry: (entry.provider_id, entry.disclosure_id))

    async def keep_until(self, disclosure_id: str, until: str) -> None:
        await self._disclosures.update_one({"_id": disclosure_id}, {"$set": {"kept_until": until}})

    async def delete_expired_entries(self, before: str) -> int:
        result = await self._disclosures.delete_many({"kept_until": {"$lt": before}})
        return result.deleted_count

    # --- the retention sweep -------------------------------------------------------------------

    async def count_held_before(self, before: datetime) -> int:
        return await self._disclosures.count_documents(
            {"status": HELD, "recorded_at": {"$lt": before}}
        )

    async def cancel_held_before(self, before: datetime, reason: str) -> int:
        result = await self._disclosures.update_many(
            {"status": HELD, "recorded_at": {"$lt": before}},
            {"$set": {"status": CANCELLED, "hold_reason": reason}, "$unset": {"pending": ""}},
        )
        return result.modified_count

    async def count_log_before(self, before: datetime) -> int:
        return await self._disclosures.count_documents({"placed_at": {"$lt": before}})

    async def delete_log_before(self, before: datetime) -> int:
        result = await self._disclosures.delete_many({"placed_at": {"$lt": before}})
        return result.deleted_count

    async def _held(self, query: dict[str, Any]) -> list[HeldDisclosure]:
        # Sorted here, not by the server: the list is whole, and ties of a millisecond are
        # broken by id as on SQLite.
        cursor = self._disclosures.find(query, {"pending": 0})
        held = [_held(document) async for document in cursor]
        return sorted(held, key=lambda entry: (entry.held_since, entry.disclosure_id))


def _check_provider_fields(changes: dict[str, Any]) -> None:
    if unknown := set(changes) - PROVIDER_FIELDS:
        raise ValueError(f"not fields a provider change may set: {sorted(unknown)}")


def _log_entry(disclosure: Disclosure, people: People) -> dict[str, Any]:
    named = people_of(people)
    return {
        "order_id": disclosure.order_id,
        "provider_id": disclosure.provider_id,
        "message_id": str(disclosure.disclosure_id),
        "subjects": list(dict.fromkeys(person.subject for person in named)),
        "people": _people_documents(named),
        "product_ids": [item.product_id for item in disclosure.items],
        "placed_at": disclosure.occurred_at,
    }


def _moment(value: datetime | None) -> datetime | None:
    return None if value is None else aware(value)


def _subjects(document: dict[str, Any]) -> tuple[str, ...]:
    return tuple(sorted(set(document.get("subjects", []))))


def _people(document: dict[str, Any]) -> list[Named]:
    """Each person with their role; one named in `subjects` alone, with the role unknown."""
    named = [Named(person["subject"], person["role"]) for person in document.get("people", [])]
    known = {person.subject for person in named}
    unknown = [Named(subject) for subject in document.get("subjects", []) if subject not in known]
    return people_of([*named, *unknown])


def _people_documents(people: People) -> list[dict[str, Any]]:
    """`people` as stored: only those whose role is known (`subjects` names everyone)."""
    return [
        {"subject": person.subject, "role": person.role}
        for person in people_of(people)
        if person.role is not None
    ]


def _provider(document: dict[str, Any]) -> Provider:
    fields = {key: value for key, value in document.items() if key != "_id"}
    for moment in ("created_at", "changed_at"):
        fields[moment] = aware(fields[moment])
    return Provider.model_validate({**fields, "provider_id": document["_id"]}, strict=False)


def _held(document: dict[str, Any]) -> HeldDisclosure:
    return HeldDisclosure(
        disclosure_id=document["_id"],
        order_id=document["order_id"],
        provider_id=document["provider_id"],
        status=document["status"],
        reason=document["hold_reason"],
        held_since=aware(document["recorded_at"]),
    )


def _sent(document: dict[str, Any]) -> SentDisclosure:
    return SentDisclosure(
        disclosure_id=document["_id"],
        order_id=document["order_id"],
        provider_id=document["provider_id"],
        sent_at=aware(document["sent_at"]),
        fields=document["fields"],
        product_ids=document["product_ids"],
        message_id=document["message_id"],
        placed_at=_moment(document.get("placed_at")),
    )


def _entry(document: dict[str, Any]) -> LogEntry:
    fields = document.get("fields")
    return LogEntry(
        disclosure_id=document["_id"],
        order_id=document["order_id"],
        provider_id=document["provider_id"],
        status=document["status"],
        subjects=_subjects(document),
        people=tuple(_people(document)),
        product_ids=tuple(document["product_ids"]),
        fields=None if fields is None else tuple(fields),
        placed_at=_moment(document.get("placed_at")),
        recorded_at=aware(document["recorded_at"]),
        sent_at=_moment(document.get("sent_at")),
        released_by=document.get("released_by"),
        hold_reason=document.get("hold_reason"),
        kept_until=document.get("kept_until"),
        holds_data="pending" in document,
    )
