"""The embedded store behaves like PyMongo's async API and keeps acknowledged writes on disk."""

from __future__ import annotations

import asyncio
import collections
import copy
import datetime
import decimal
import errno
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from bson import SON, Decimal128, Int64, ObjectId
from bson.errors import InvalidDocument
from pymongo import (
    ASCENDING,
    DESCENDING,
    DeleteMany,
    DeleteOne,
    IndexModel,
    InsertOne,
    ReplaceOne,
    ReturnDocument,
    UpdateMany,
    UpdateOne,
)
from pymongo.errors import (
    BulkWriteError,
    DuplicateKeyError,
    InvalidOperation,
    WriteConcernError,
)

from shared import embedded_store
from shared.embedded_store import EmbeddedClient, EmbeddedCollection, EmbeddedStoreError

UTC = datetime.UTC


@pytest.fixture
async def memory() -> Any:
    client = await EmbeddedClient.open(None)
    yield client["register"]["customers"]
    await client.close()


async def everything(client: EmbeddedClient) -> dict[str, Any]:
    """Every collection's documents in natural order, and its indexes."""
    database = client["register"]
    return {
        name: (await database[name].find().to_list(), await database[name].index_information())
        for name in sorted(await database.list_collection_names())
    }


# --- Parity with PyMongo's async API ---------------------------------------------------------


async def test_upsert_with_set_on_insert_keeps_the_first_insert_values(
    memory: EmbeddedCollection,
) -> None:
    for seen in ("first", "second"):
        await memory.update_one(
            {"email": "a@example.com"},
            {"$setOnInsert": {"created": seen}, "$set": {"last": seen}},
            upsert=True,
        )
    document = await memory.find_one({"email": "a@example.com"}, {"_id": 0})
    assert document == {"email": "a@example.com", "created": "first", "last": "second"}


async def test_unique_index_rejects_a_duplicate(memory: EmbeddedCollection) -> None:
    assert await memory.create_index("email", unique=True) == "email_1"
    await memory.insert_one({"email": "a@example.com"})
    with pytest.raises(DuplicateKeyError):
        await memory.insert_one({"email": "a@example.com"})
    assert await memory.count_documents({}) == 1


async def test_push_appends_to_an_array(memory: EmbeddedCollection) -> None:
    await memory.insert_one({"_id": "c1", "orders": []})
    await memory.update_one({"_id": "c1"}, {"$push": {"orders": "o1"}})
    await memory.update_one({"_id": "c1"}, {"$push": {"orders": "o2"}})
    assert await memory.find_one("c1") == {"_id": "c1", "orders": ["o1", "o2"]}


async def test_an_update_bson_cannot_hold_is_refused(memory: EmbeddedCollection) -> None:
    await memory.insert_one({"_id": 1, "amounts": []})
    with pytest.raises(InvalidDocument):
        await memory.update_one({"_id": 1}, {"$push": {"amounts": decimal.Decimal("1.5")}})
    assert await memory.find_one(1) == {"_id": 1, "amounts": []}


async def test_find_sorts_skips_limits_and_projects(memory: EmbeddedCollection) -> None:
    await memory.insert_many([{"_id": i, "n": i % 3, "name": f"c{i}"} for i in range(6)])
    cursor = memory.find({"n": {"$gte": 1}}, projection={"name": 1}, sort=[("_id", DESCENDING)])
    assert await cursor.skip(1).limit(2).to_list() == [
        {"_id": 4, "name": "c4"},
        {"_id": 2, "name": "c2"},
    ]
    names = [d["name"] async for d in memory.find().sort("name", ASCENDING).batch_size(2)]
    assert names == ["c0", "c1", "c2", "c3", "c4", "c5"]


async def test_cursor_reads_in_parts_and_refuses_options_once_started(
    memory: EmbeddedCollection,
) -> None:
    await memory.insert_many([{"_id": i} for i in range(5)])
    cursor = memory.find().sort("_id")
    assert await cursor.to_list(2) == [{"_id": 0}, {"_id": 1}]
    with pytest.raises(InvalidOperation):
        cursor.limit(1)
    assert await cursor.next() == {"_id": 2}
    assert await cursor.to_list() == [{"_id": 3}, {"_id": 4}]
    with pytest.raises(ValueError):
        await cursor.to_list(0)
    async with memory.find() as closed:
        await closed.close()
        assert await closed.to_list() == []


async def test_aggregate_groups_through_an_awaited_cursor(memory: EmbeddedCollection) -> None:
    await memory.insert_many(
        [
            {"country": "FI", "total": 10},
            {"country": "FI", "total": 5},
            {"country": "SE", "total": 7},
        ]
    )
    cursor = await memory.aggregate(
        [{"$group": {"_id": "$country", "sum": {"$sum": "$total"}}}, {"$sort": {"_id": 1}}]
    )
    assert [row async for row in cursor] == [{"_id": "FI", "sum": 15}, {"_id": "SE", "sum": 7}]
    cursor = await memory.aggregate([{"$match": {"country": "SE"}}, {"$project": {"_id": 0}}])
    assert await cursor.to_list(None) == [{"country": "SE", "total": 7}]


async def test_bulk_write_applies_mixed_operations(memory: EmbeddedCollection) -> None:
    await memory.insert_many([{"_id": 1, "n": 0}, {"_id": 2, "n": 0}, {"_id": 3, "n": 0}])
    result = await memory.bulk_write(
        [
            InsertOne({"_id": 4, "n": 0}),
            UpdateOne({"_id": 1}, {"$inc": {"n": 1}}),
            UpdateMany({"n": 0}, {"$set": {"n": 9}}),
            ReplaceOne({"_id": 5}, {"n": 5}, upsert=True),
            DeleteOne({"_id": 2}),
        ]
    )
    assert (result.inserted_count, result.modified_count, result.deleted_count) == (1, 4, 1)
    assert result.upserted_ids == {3: 5}
    assert await memory.find().sort("_id").to_list() == [
        {"_id": 1, "n": 1},
        {"_id": 3, "n": 9},
        {"_id": 4, "n": 9},
        {"_id": 5, "n": 5},
    ]


async def test_unordered_bulk_write_reports_errors_and_applies_the_rest(
    memory: EmbeddedCollection,
) -> None:
    await memory.insert_one({"_id": 1})
    with pytest.raises(BulkWriteError) as raised:
        await memory.bulk_write([InsertOne({"_id": 1}), InsertOne({"_id": 2})], ordered=False)
    assert [error["index"] for error in raised.value.details["writeErrors"]] == [0]
    assert await memory.distinct("_id") == [1, 2]


async def test_find_one_and_update_returns_the_document_after(memory: EmbeddedCollection) -> None:
    await memory.insert_one({"_id": "counter", "value": 1})
    after = await memory.find_one_and_update(
        {"_id": "counter"}, {"$inc": {"value": 1}}, return_document=ReturnDocument.AFTER
    )
    before = await memory.find_one_and_update({"_id": "counter"}, {"$inc": {"value": 1}})
    assert (after, before) == ({"_id": "counter", "value": 2}, {"_id": "counter", "value": 2})


async def test_counts_and_distinct(memory: EmbeddedCollection) -> None:
    await memory.insert_many([{"tier": "gold"}, {"tier": "gold"}, {"tier": "basic"}])
    assert await memory.count_documents({"tier": "gold"}) == 2
    assert await memory.estimated_document_count() == 3
    assert sorted(await memory.distinct("tier")) == ["basic", "gold"]


async def test_datetimes_come_back_timezone_aware(memory: EmbeddedCollection) -> None:
    moment = datetime.datetime(2025, 3, 1, 12, 30, 15, 123000, tzinfo=UTC)
    await memory.insert_one({"_id": 1, "at": moment})
    stored = await memory.find_one({"at": {"$gte": moment}})
    assert stored is not None
    assert stored["at"] == moment
    assert stored["at"].utcoffset() == datetime.timedelta(0)


async def test_database_answers_ping_and_drops_collections() -> None:
    async with await EmbeddedClient.open(None) as client:
        database = client.get_database("register")
        assert await database.command("ping") == {"ok": 1.0}
        assert await database.command({"ping": 1}) == {"ok": 1.0}
        await database.get_collection("customers").insert_one({"_id": 1})
        assert await database.list_collection_names() == ["customers"]
        await database.drop_collection("customers")
        assert await database.list_collection_names() == []
    with pytest.raises(InvalidOperation):
        await database["customers"].insert_one({"_id": 2})


# --- Durability ----------------------------------------------------------------------------


async def test_reopen_after_close_restores_documents_and_indexes(tmp_path: Path) -> None:
    client = await EmbeddedClient.open(tmp_path)
    customers = client["register"]["customers"]
    await customers.create_indexes([IndexModel("email", unique=True), IndexModel("country")])
    await customers.create_index([("country", ASCENDING), ("at", DESCENDING)], name="by_time")
    await customers.drop_index("by_time")
    await customers.insert_many(
        [
            {
                "email": f"{i}@example.com",
                "country": "FI",
                "at": datetime.datetime(2025, 1, 1, tzinfo=UTC),
                "total": Decimal128("10.05"),
                "big": Int64(2**40),
                "raw": b"\x00\xff",
                "tags": [{"n": i}],
            }
            for i in range(5)
        ]
    )
    await customers.update_many({"country": "FI"}, {"$set": {"country": "SE"}})
    await customers.insert_one({"_id": "c1", "email": "c1@example.com", "orders": []})
    await customers.update_one({"_id": "c1"}, {"$push": {"orders": "o1"}})
    with pytest.raises(DuplicateKeyError):  # c1 fails the condition; the upsert collides with it
        await customers.update_one({"_id": "c1", "orders": []}, {"$set": {"x": 1}}, upsert=True)
    await customers.update_one({"_id": "c2"}, {"$setOnInsert": {"email": "c2@e"}}, upsert=True)
    await customers.delete_one({"email": "0@example.com"})
    await customers.replace_one({"email": "1@example.com"}, {"email": "1@example.com"})
    await customers.find_one_and_delete({"email": "2@example.com"})
    # Upserts whose new _id only the store knows.
    await customers.find_one_and_update(
        {"email": "new@example.com"}, {"$set": {"x": 1}}, upsert=True
    )
    await customers.find_one_and_replace({"email": "r@example.com"}, {"email": "r@e"}, upsert=True)
    await customers.update_many({"email": "m@example.com"}, {"$set": {"x": 2}}, upsert=True)
    await customers.bulk_write(
        [
            UpdateOne({"email": "b1@example.com"}, {"$set": {"x": 3}}, upsert=True),
            UpdateOne({"email": "b2@example.com"}, {"$set": {"x": 4}}, upsert=True),
            DeleteMany({"email": "3@example.com"}),
        ]
    )
    with pytest.raises(BulkWriteError):  # ordered: the first document lands before the error
        await customers.insert_many([{"email": "p@example.com"}, {"email": "4@example.com"}])
    await client["register"]["scratch"].insert_one({"_id": 1})
    await client["register"].drop_collection("scratch")
    expected = await everything(client)
    await client.close()

    reopened = await EmbeddedClient.open(tmp_path)
    assert await everything(reopened) == expected
    assert "by_time" not in expected["customers"][1]
    with pytest.raises(DuplicateKeyError):
        await reopened["register"]["customers"].insert_one({"email": "p@example.com"})
    await reopened.close()
    # A second reopen reads the snapshot the first one wrote.
    async with await EmbeddedClient.open(tmp_path) as again:
        assert await everything(again) == expected


WRITER = """
import asyncio, sys
from collections.abc import Callable
from pathlib import Path
from shared.embedded_store import EmbeddedClient

async def writer(collection, worker):
    for n in range(1_000_000):
        result = await collection.insert_one({"worker": worker, "n": n})
        print(result.inserted_id, flush=True)

async def main():
    client = await EmbeddedClient.open(Path(sys.argv[1]))
    await asyncio.gather(*(writer(client["register"]["docs"], w) for w in range(8)))

asyncio.run(main())
"""


async def test_every_acknowledged_write_survives_kill_9(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITER, str(tmp_path), stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    acknowledged: list[bytes] = []
    async with asyncio.timeout(60):
        while len(acknowledged) < 400:
            line = await process.stdout.readline()
            assert line, "the writer stopped early"
            acknowledged.append(line)
        process.send_signal(signal.SIGKILL)
        acknowledged += (await process.stdout.read()).splitlines(keepends=True)
        assert await process.wait() == -signal.SIGKILL
    printed = {ObjectId(line.decode().strip()) for line in acknowledged if line.endswith(b"\n")}

    async with await EmbeddedClient.open(tmp_path) as reopened:
        stored = await reopened["register"]["docs"].distinct("_id")
    assert printed <= set(stored)


@pytest.mark.parametrize(
    "torn",
    [
        lambda record: record[:-20],  # half a record, no newline
        lambda record: b"00000000" + record[8:],  # whole line, wrong checksum
        lambda record: b"\x00garbage\n\xff\x00",  # bytes that are no record at all
    ],
    ids=["half-a-record", "bad-checksum", "garbage"],
)
async def test_a_torn_final_record_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, torn: Callable[[bytes], bytes]
) -> None:
    async with await EmbeddedClient.open(tmp_path) as client:
        await client["register"]["customers"].insert_many([{"_id": i} for i in range(3)])
    journal = tmp_path / "journal.jsonl"
    intact = journal.read_bytes()
    journal.write_bytes(intact + torn(intact.splitlines(keepends=True)[0]))

    async with await EmbeddedClient.open(tmp_path) as client:
        assert await client["register"]["customers"].distinct("_id") == [0, 1, 2]
        await client["register"]["customers"].insert_one({"_id": 3})
    assert f"{journal}: dropping torn record at byte offset {len(intact)}" in caplog.text
    async with await EmbeddedClient.open(tmp_path) as client:
        assert await client["register"]["customers"].distinct("_id") == [0, 1, 2, 3]


async def test_a_corrupt_record_before_good_ones_is_an_error(tmp_path: Path) -> None:
    async with await EmbeddedClient.open(tmp_path) as client:
        for i in range(3):
            await client["register"]["customers"].insert_one({"_id": i, "name": "Aino"})
    journal = tmp_path / "journal.jsonl"
    first, *rest = journal.read_bytes().splitlines(keepends=True)
    damaged = rest[0][:20] + bytes([rest[0][20] ^ 1]) + rest[0][21:]  # one bit flipped
    journal.write_bytes(first + damaged + b"".join(rest[1:]))

    with pytest.raises(
        EmbeddedStoreError, match=rf"{journal}: corrupt record at byte offset {len(first)}"
    ):
        await EmbeddedClient.open(tmp_path)


async def test_concurrent_writes_share_fsyncs(tmp_path: Path) -> None:
    async with await EmbeddedClient.open(tmp_path) as client:
        customers = client["register"]["customers"]
        await asyncio.gather(*(customers.insert_one({"_id": i}) for i in range(500)))
        assert client.journal_flushes <= 5
    async with await EmbeddedClient.open(tmp_path) as client:
        assert await client["register"]["customers"].count_documents({}) == 500


async def test_a_failed_fsync_fails_the_write_and_refuses_later_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    async with await EmbeddedClient.open(tmp_path) as client:
        customers = client["register"]["customers"]
        monkeypatch.setattr(os, "fsync", failing_fsync)
        with pytest.raises(WriteConcernError, match="not durable"):
            await customers.insert_one({"_id": 1})
        with pytest.raises(WriteConcernError, match="failed earlier"):
            await customers.insert_one({"_id": 2})
        assert await customers.find_one({"_id": 2}) is None


async def test_a_directory_opens_only_once(tmp_path: Path) -> None:
    async with await EmbeddedClient.open(tmp_path):
        with pytest.raises(EmbeddedStoreError, match=f"embedded store {tmp_path} is already open"):
            await EmbeddedClient.open(tmp_path)
    async with await EmbeddedClient.open(tmp_path):
        pass  # closing released the lock


async def test_memory_mode_writes_nothing_to_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with await EmbeddedClient.open(None) as client:
        await client["register"]["customers"].insert_one({"_id": 1})
        await client["register"]["customers"].create_index("email", unique=True)
        assert client.journal_flushes == 0
    assert await asyncio.to_thread(lambda: [*tmp_path.iterdir()]) == []


# --- the equality index: the same answers as a full scan, without the scan ----------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_values = st.one_of(
    st.none(),
    st.integers(0, 3),
    st.sampled_from(["a", "b"]),
    st.lists(st.sampled_from(["a", "b"]), max_size=2),
)
_documents = st.lists(
    st.fixed_dictionaries({"_id": st.integers(0, 15), "subject": _values, "n": st.integers(0, 3)}),
    max_size=12,
)
_writes = st.lists(
    st.tuples(st.sampled_from(["set", "unset", "delete", "upsert"]), st.integers(0, 15), _values),
    max_size=8,
)
_queries = st.sampled_from(
    [
        {"subject": "a"},
        {"subject": None},
        {"subject": 1},
        {"subject": {"$in": ["a", 2]}},
        {"subject": {"$eq": "b"}, "n": {"$gte": 1}},
        {"$or": [{"subject": "a"}, {"_id": 3}]},
        {"_id": {"$in": [1, 2, 3]}},
        {"n": 2},
    ]
)


@settings(max_examples=60, deadline=None)
@given(documents=_documents, writes=_writes, query=_queries)
def test_queries_on_an_indexed_field_answer_as_a_scan_does(
    documents: list[dict[str, object]],
    writes: list[tuple[str, int, object]],
    query: dict[str, object],
) -> None:
    async def scenario() -> tuple[list[object], list[object]]:
        answers = []
        for indexed in (True, False):
            collection = EmbeddedClient(None)["db"]["c"]
            if indexed:
                await collection.create_index("subject")
                await collection.find_one({"subject": "warm the index up"})
            unique = {d["_id"]: d for d in documents}
            if unique:
                await collection.insert_many(list(unique.values()))
            for kind, document_id, value in writes:
                if kind == "set":
                    await collection.update_one({"_id": document_id}, {"$set": {"subject": value}})
                elif kind == "unset":
                    await collection.update_many({"subject": value}, {"$unset": {"subject": ""}})
                elif kind == "delete":
                    await collection.delete_one({"_id": document_id})
                else:
                    await collection.update_one(
                        {"_id": document_id}, {"$set": {"subject": value}}, upsert=True
                    )
            found = await collection.find(query).to_list(None)
            # Without a sort MongoDB promises no order: compare what was found.
            answers.append(sorted(d["_id"] for d in found))
        return answers[0], answers[1]

    with_index, scanned = asyncio.run(scenario())
    assert with_index == scanned


# --- the speed shims return exactly what mongomock_ng's own helpers return ----------------------

_HELSINKI = datetime.timezone(datetime.timedelta(hours=2))
_SAMPLES: list[Any] = [
    "text",
    7,
    Int64(2**40),
    1.5,
    True,
    None,
    b"bytes",
    ObjectId("5f1d7a3e9c1e4b2a3c4d5e6f"),
    datetime.datetime(2026, 11, 30, 12, 0, 0, 123456),
    datetime.datetime(2026, 11, 30, 12, 0, 0, 987654, tzinfo=_HELSINKI),
    {"when": datetime.datetime(2026, 1, 1, 0, 0, 0, 999, tzinfo=UTC), "n": {"deep": [1, "x"]}},
    [{"at": datetime.datetime(2026, 5, 5, 5, 5, 5, 555555)}, ("tuple", 2)],
    collections.OrderedDict(a=datetime.datetime(2026, 2, 2, tzinfo=_HELSINKI), b=[None]),
    SON([("z", 1), ("a", {"b": datetime.datetime(2026, 3, 3, 3, 3, 3, 333)})]),
    Decimal128("1.10"),
]


@pytest.mark.parametrize("value", _SAMPLES, ids=lambda value: type(value).__name__)
def test_datetime_shims_return_what_the_generic_helpers_return(value: Any) -> None:
    for fast, generic in (
        (embedded_store._patch_datetimes, embedded_store._generic_patch_datetimes),
        (embedded_store._make_aware, embedded_store._generic_make_aware),
    ):
        expected = generic(copy.deepcopy(value))
        got = fast(copy.deepcopy(value))
        assert got == expected
        assert type(got) is type(expected)
        assert repr(got) == repr(expected)  # types and tzinfo all the way down


async def test_datetimes_are_stored_to_the_millisecond_and_read_back_in_utc() -> None:
    client = await EmbeddedClient.open(None)
    people = client["db"]["people"]
    placed = datetime.datetime(2026, 11, 30, 14, 5, 6, 789123, tzinfo=_HELSINKI)
    await people.insert_one({"_id": "a", "when": placed, "log": [{"at": placed}]})
    await people.update_one({"_id": "a"}, {"$set": {"later": placed}})
    stored = await people.find_one({"_id": "a"})
    in_utc = datetime.datetime(2026, 11, 30, 12, 5, 6, 789000, tzinfo=UTC)
    assert stored == {"_id": "a", "when": in_utc, "log": [{"at": in_utc}], "later": in_utc}
    assert stored is not None and stored["when"].tzinfo is not None
    await client.close()


async def test_find_one_by_id_answers_as_the_generic_query_does() -> None:
    client = await EmbeddedClient.open(None)
    people = client["db"]["people"]
    placed = datetime.datetime(2026, 11, 30, 14, 5, 6, 789123, tzinfo=_HELSINKI)
    documents: list[dict[str, Any]] = [
        {"_id": "a", "when": placed, "nested": {"list": [placed, {"x": b"1"}]}, "n": None},
        {"_id": 7, "tuple": (1, 2), "money": Decimal128("9.99")},
        {"_id": ObjectId("5f1d7a3e9c1e4b2a3c4d5e6f"), "flag": True},
    ]
    await people.insert_many(documents)
    for document in documents:
        by_id = {"_id": document["_id"]}
        fast = await people.find_one(by_id)
        generic = await people.find_one({"$and": [by_id]})  # the same query, not an exact _id
        assert fast == generic and repr(fast) == repr(generic)
        assert fast is not None and fast is not people._sync._store._documents[document["_id"]]
        fast["changed"] = True  # a caller's change to what it got does not reach the store
        assert "changed" not in (await people.find_one(by_id) or {})
    assert await people.find_one({"_id": "missing"}) is None
    later = datetime.datetime(2027, 1, 1, tzinfo=UTC)
    for condition in ({"when": {"$lt": later}}, {"when": {"$gt": later}}, {"n": None}):
        with_id = {"_id": "a", **condition}
        assert await people.find_one(with_id) == await people.find_one({"$and": [with_id]})
    assert await people.find_one({"_id": "a", "when": {"$gt": later}}) is None
    # find_one_and_update reads through mongomock_ng's own find_one, twice
    after = await people.find_one_and_update(
        {"_id": "a", "when": {"$lt": later}},
        {"$set": {"n": 1}},
        return_document=ReturnDocument.AFTER,
    )
    assert after == {**(await people.find_one({"$and": [{"_id": "a"}]}) or {}), "n": 1}
    assert (
        await people.find_one_and_update({"_id": "a", "when": {"$gt": later}}, {"$set": {"n": 2}})
        is None
    )
    await client.close()


async def test_a_query_is_narrowed_by_its_most_selective_indexed_equality() -> None:
    client = await EmbeddedClient.open(None)
    log = client["db"]["disclosures"]
    await log.create_index([("status", ASCENDING)])
    await log.create_index([("subjects", ASCENDING)])
    await log.insert_many(
        [{"_id": n, "status": "sent", "subjects": [f"s{n}", "shared"]} for n in range(50)]
    )
    query = {"status": "sent", "subjects": "s7"}
    assert await log.find(query).to_list() == [
        {"_id": 7, "status": "sent", "subjects": ["s7", "shared"]}
    ]
    assert log._candidate_keys(query) == {7}  # not all 50 documents with status "sent"
    await client.close()
