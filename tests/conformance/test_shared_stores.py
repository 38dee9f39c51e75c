"""The shared ports every participant's store holds, on each adapter: the erasure records
(shared/erasure/records.py) and the audit records (shared/audit.py); and the retry of the
conditional upserts the MongoDB adapters make (shared/database.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import pytest
from pymongo.errors import DuplicateKeyError
from pymongo.results import UpdateResult

from shared.audit import audit_records
from shared.contracts.erasure import EraseSubject, ErasureReported, Retained
from shared.contracts.fields import CLOCK_SKEW
from shared.contracts.runtime import AuditEntry
from shared.database import (
    Collection,
    Database,
    MongoDatabase,
    conditional_upsert,
    conditional_upsert_returning,
)
from shared.erasure.records import open_erasure_records

SUBJECT_A = "a" * 64
SUBJECT_B = "b" * 64
SUBJECT_C = "c" * 64
T0 = datetime(2025, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)


def erase(subject: str, request_id: str, erased_at: datetime) -> EraseSubject:
    return EraseSubject(
        request_id=request_id, subject=subject, reason="subject-request", erased_at=erased_at
    )


def report(request_id: str, erased: int) -> ErasureReported:
    return ErasureReported(
        request_id=request_id,
        service="orders",
        reported_at=T0,
        erased={"orders": erased},
        kept=[Retained(what="orders", basis="bookkeeping", until="2031-12-31")],
        providers_notified=["kokemus-oy"],
    )


# --- ErasureRecords ------------------------------------------------------------------------------


async def test_a_second_burial_keeps_the_later_erasure_and_both_requests(
    database: Database,
) -> None:
    records = await open_erasure_records(database)
    await records.bury(erase(SUBJECT_A, "req-1", T0 + timedelta(hours=1)))
    await records.bury(erase(SUBJECT_A, "req-2", T0))  # an older erasure, arriving late
    await records.bury(erase(SUBJECT_A, "req-2", T0))  # a repeat of the same command
    tombstone = await records.tombstone(SUBJECT_A)
    assert tombstone is not None
    assert tombstone.erased_at == T0 + timedelta(hours=1)
    assert sorted(tombstone.request_ids) == ["req-1", "req-2"]

    await records.bury(erase(SUBJECT_A, "req-3", T0 + timedelta(hours=2)))
    moved = await records.tombstone(SUBJECT_A)
    assert moved is not None
    assert moved.erased_at == T0 + timedelta(hours=2)
    assert sorted(moved.request_ids) == ["req-1", "req-2", "req-3"]


async def test_tombstones_of_several_subjects(database: Database) -> None:
    records = await open_erasure_records(database)
    await records.bury(erase(SUBJECT_A, "req-a", T0))
    await records.bury(erase(SUBJECT_B, "req-b", T0 + timedelta(minutes=1)))

    found = await records.tombstones([SUBJECT_A, SUBJECT_B, SUBJECT_C, SUBJECT_A])
    assert set(found) == {SUBJECT_A, SUBJECT_B}
    assert found[SUBJECT_B].subject == SUBJECT_B
    assert found[SUBJECT_B].request_ids == ("req-b",)
    assert found[SUBJECT_B].erased_at == T0 + timedelta(minutes=1)
    assert await records.tombstone(SUBJECT_C) is None
    assert await records.tombstones([]) == {}


async def test_erased_at_comes_back_to_the_millisecond_and_in_utc(database: Database) -> None:
    records = await open_erasure_records(database)
    helsinki = timezone(timedelta(hours=3))
    moment = datetime(2025, 6, 1, 15, 30, 45, 678999, tzinfo=helsinki)
    await records.bury(erase(SUBJECT_A, "req-1", moment))

    tombstone = await records.tombstone(SUBJECT_A)
    assert tombstone is not None
    assert tombstone.erased_at == moment.replace(microsecond=678000)
    assert tombstone.erased_at.utcoffset() == timedelta(0)
    assert tombstone.erased_at.astimezone(UTC).hour == 12
    # What was stored compares with what the tombstone buries, to the millisecond.
    last = moment.replace(microsecond=678000) + CLOCK_SKEW
    assert tombstone.buries(last)
    assert not tombstone.buries(last + timedelta(milliseconds=1))


async def test_the_first_report_of_a_request_is_kept_and_marked_done(database: Database) -> None:
    records = await open_erasure_records(database)
    assert await records.report("req-1") is None

    first = report("req-1", erased=3)
    await records.save_report(first)
    await records.save_report(report("req-1", erased=5))  # a concurrent second plan
    assert await records.report("req-1") == (first, False)

    await records.mark_done("req-1")
    await records.mark_done("req-unknown")  # nothing to mark: no error, nothing created
    assert await records.report("req-1") == (first, True)
    assert await records.report("req-unknown") is None


async def test_erasure_records_can_be_opened_again_on_the_same_database(
    database: Database,
) -> None:
    await (await open_erasure_records(database)).bury(erase(SUBJECT_A, "req-1", T0))
    again = await open_erasure_records(database)
    tombstone = await again.tombstone(SUBJECT_A)
    assert tombstone is not None and tombstone.request_ids == ("req-1",)


# --- AuditRecords --------------------------------------------------------------------------------


def entry(at: datetime, actor: str | None, command: str = "orders.show") -> AuditEntry:
    return AuditEntry(
        at=at,
        service="orders",
        actor=actor,
        command=command,
        outcome="ok" if actor else "refused",
        subject=SUBJECT_A if actor == "alice" else None,
        targets={"order_id": f"KK-{at.minute}"},
        count=1,
        message_id=f"m-{at.minute}",
    )


async def test_audit_entries_newest_first_filtered_and_limited(database: Database) -> None:
    records = audit_records(database)
    await records.prepare()
    await records.prepare()  # every start prepares again
    written = [
        entry(T0 + timedelta(minutes=1), "alice"),
        entry(T0 + timedelta(minutes=3), "bob"),
        entry(T0 + timedelta(minutes=2), "alice", "erasure.request"),
        entry(T0 + timedelta(minutes=4), None, "unreadable"),
        entry(T0 + timedelta(minutes=5), "alice"),
    ]
    for each in written:
        await records.append(each)

    def minutes(entries: list[AuditEntry]) -> list[int]:
        return [each.at.minute for each in entries]

    everything = await records.entries(None, None, 100)
    assert minutes(everything) == [5, 4, 3, 2, 1]
    assert sorted(everything, key=lambda each: each.at) == sorted(written, key=lambda e: e.at)
    assert all(each.at.utcoffset() == timedelta(0) for each in everything)

    assert minutes(await records.entries(None, "alice", 100)) == [5, 2, 1]
    assert minutes(await records.entries(T0 + timedelta(minutes=3), None, 100)) == [5, 4, 3]
    assert minutes(await records.entries(T0 + timedelta(minutes=2), "alice", 100)) == [5, 2]
    assert minutes(await records.entries(None, None, 2)) == [5, 4]
    assert minutes(await records.entries(None, "alice", 1)) == [5]
    assert await records.entries(None, "carol", 100) == []
    assert await records.entries(T0 + timedelta(minutes=6), None, 100) == []


# --- the conditional upserts' one retry (shared/database.py) ---------------------------------


class FlakyCollection:
    """Raises DuplicateKeyError for the first `failures` writes, as MongoDB does when a
    concurrent upsert inserted the same `_id` between the match and the insert."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[dict[str, Any]] = []

    def _attempt(self, filter: dict[str, Any]) -> None:
        self.calls.append(filter)
        if len(self.calls) <= self.failures:
            raise DuplicateKeyError("E11000 duplicate key error")

    async def update_one(
        self, filter: dict[str, Any], update: dict[str, Any], upsert: bool = False
    ) -> UpdateResult:
        self._attempt(filter)
        return UpdateResult({"n": 1, "nModified": 1}, acknowledged=True)

    async def find_one_and_update(
        self, filter: dict[str, Any], update: dict[str, Any], **kwargs: Any
    ) -> dict[str, Any]:
        self._attempt(filter)
        return {"_id": filter["_id"], "written": True}

    async def find_one(self, filter: dict[str, Any]) -> dict[str, Any]:
        return {"_id": filter["_id"], "written": False}


CONDITION = {"as_of": {"$lt": T0}}
UPDATE = {"$set": {"as_of": T0}}


def as_collection(fake: FlakyCollection) -> Collection:
    return cast("Collection", fake)


async def test_a_duplicate_key_on_the_first_attempt_is_retried() -> None:
    fake = FlakyCollection(failures=1)
    assert await conditional_upsert(as_collection(fake), "x", CONDITION, UPDATE) is True
    assert fake.calls == [{"_id": "x", **CONDITION}] * 2


async def test_a_duplicate_key_on_the_retry_means_the_stored_document_wins() -> None:
    fake = FlakyCollection(failures=2)
    assert await conditional_upsert(as_collection(fake), "x", CONDITION, UPDATE) is False
    assert len(fake.calls) == 2


async def test_the_returning_upsert_retries_then_reads_what_is_stored() -> None:
    once = FlakyCollection(failures=1)
    written = await conditional_upsert_returning(as_collection(once), "x", CONDITION, UPDATE)
    assert written == {"_id": "x", "written": True}
    assert len(once.calls) == 2
    twice = FlakyCollection(failures=2)
    stored = await conditional_upsert_returning(as_collection(twice), "x", CONDITION, UPDATE)
    assert stored == {"_id": "x", "written": False}
    assert len(twice.calls) == 2


async def test_conditional_upsert_on_mongodb_creates_updates_and_refuses(
    database: Database,
) -> None:
    if not isinstance(database, MongoDatabase):
        pytest.skip("a MongoDB adapter's helper")
    collection = database.documents["versions"]
    later = {"$set": {"as_of": T0 + timedelta(hours=1)}}
    assert await conditional_upsert(collection, "x", CONDITION, UPDATE) is True  # created
    # The stored `as_of` is T0, not before it: the condition fails on the existing document.
    assert await conditional_upsert(collection, "x", CONDITION, later) is False
    newer = {"as_of": {"$lt": T0 + timedelta(hours=1)}}
    assert await conditional_upsert(collection, "x", newer, later) is True
    stored = await conditional_upsert_returning(collection, "x", CONDITION, UPDATE)
    assert stored == {"_id": "x", "as_of": T0 + timedelta(hours=1)}
