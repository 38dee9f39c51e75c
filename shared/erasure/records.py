"""A participant's erasure records: the port, and its MongoDB and SQLite adapters.

Tombstones: one per erased person (subject hash, when, by which requests); a later erasure of the
same person moves `erased_at` forward. Reports: one per request, the first plan made for it and
whether it has been carried out, kept to the end of the erasure records' retention (the daily
sweep, shared/retention_sweep.py, deletes them by when they were reported).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

import orjson
from pymongo import ASCENDING, IndexModel

from shared.contracts.erasure import EraseSubject, ErasureReported
from shared.database import Database, MongoDocuments, SqliteCutOff, sqlite_row
from shared.erasure.tombstone import Tombstone
from shared.sqlite import SqliteDatabase, from_millis, millis
from shared.times import aware


class ErasureRecords(Protocol):
    async def bury(self, command: EraseSubject) -> None: ...

    async def tombstone(self, subject: str) -> Tombstone | None: ...

    async def tombstones(self, subjects: Iterable[str]) -> dict[str, Tombstone]: ...

    async def report(self, request_id: str) -> tuple[ErasureReported, bool] | None:
        """The stored report of a request and whether it has been carried out."""
        ...

    async def save_report(self, report: ErasureReported) -> None:
        """Keep the first report of a request: a concurrent second plan never replaces it."""
        ...

    async def mark_done(self, request_id: str) -> None:
        """The request has been carried out: what it erased is gone from the store's files
        too once this returns (SQLite checkpoints its write-ahead log)."""
        ...

    async def count_reports_before(self, before: datetime) -> int:
        """How many reports were made before `before` (the retention sweep's preview)."""
        ...

    async def delete_reports_before(self, before: datetime) -> int:
        """Delete the reports made before `before`, whose retention has ended; how many."""
        ...


class MongoErasureRecords:
    """`tombstones`: `{_id: subject hash, erased_at, request_ids}`; `erasure_reports`:
    `{_id: request id, report, done, reported_at}` (`reported_at` beside the report, indexed,
    for the retention sweep; `prepare` adds it to reports saved before it was kept)."""

    def __init__(self, documents: MongoDocuments) -> None:
        self._tombstones = documents["tombstones"]
        self._reports = documents["erasure_reports"]

    async def prepare(self) -> None:
        await self._reports.create_indexes([IndexModel([("reported_at", ASCENDING)])])
        cursor = self._reports.find({"reported_at": {"$exists": False}}, {"report": 1})
        for document in await cursor.to_list(None):
            report = ErasureReported.model_validate(document["report"], strict=False)
            await self._reports.update_one(
                {"_id": document["_id"]}, {"$set": {"reported_at": report.reported_at}}
            )

    async def bury(self, command: EraseSubject) -> None:
        await self._tombstones.update_one(
            {"_id": command.subject},
            {
                "$max": {"erased_at": command.erased_at},
                "$addToSet": {"request_ids": command.request_id},
            },
            upsert=True,
        )

    async def tombstone(self, subject: str) -> Tombstone | None:
        return (await self.tombstones([subject])).get(subject)

    async def tombstones(self, subjects: Iterable[str]) -> dict[str, Tombstone]:
        cursor = self._tombstones.find({"_id": {"$in": list(subjects)}})
        return {
            document["_id"]: Tombstone(
                document["_id"], aware(document["erased_at"]), tuple(document["request_ids"])
            )
            async for document in cursor
        }

    async def report(self, request_id: str) -> tuple[ErasureReported, bool] | None:
        document = await self._reports.find_one({"_id": request_id})
        if document is None:
            return None
        return ErasureReported.model_validate(document["report"], strict=False), document["done"]

    async def save_report(self, report: ErasureReported) -> None:
        await self._reports.update_one(
            {"_id": report.request_id},
            {
                "$setOnInsert": {
                    "report": report.model_dump(mode="json"),
                    "done": False,
                    "reported_at": report.reported_at,
                }
            },
            upsert=True,
        )

    async def mark_done(self, request_id: str) -> None:
        await self._reports.update_one({"_id": request_id}, {"$set": {"done": True}})

    async def count_reports_before(self, before: datetime) -> int:
        return await self._reports.count_documents({"reported_at": {"$lt": before}})

    async def delete_reports_before(self, before: datetime) -> int:
        result = await self._reports.delete_many({"reported_at": {"$lt": before}})
        return result.deleted_count


SQLITE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS tombstones (
        subject TEXT PRIMARY KEY,
        erased_at INTEGER NOT NULL,
        request_ids TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS erasure_reports (
        request_id TEXT PRIMARY KEY,
        report TEXT NOT NULL,
        done INTEGER NOT NULL
    ) WITHOUT ROWID""",
    # When each report was made (ms), for the retention sweep: a table of its own, so that a
    # file from before it was kept needs no migration but this, which fills it in (once per
    # report; at every start it finds each one there).
    """CREATE TABLE IF NOT EXISTS erasure_report_times (
        request_id TEXT PRIMARY KEY,
        reported_at INTEGER NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS erasure_report_times_reported "
    "ON erasure_report_times (reported_at)",
    "INSERT OR IGNORE INTO erasure_report_times (request_id, reported_at) "
    "SELECT request_id, CAST(round((julianday(json_extract(report, '$.reported_at')) "
    "- 2440587.5) * 86400000.0) AS INTEGER) FROM erasure_reports "
    "WHERE json_extract(report, '$.reported_at') IS NOT NULL",
)


_REPORTS_BY_TIME = SqliteCutOff("FROM erasure_report_times WHERE reported_at < ?")


class SqliteErasureRecords:
    """Tables `tombstones` (request ids as a JSON list) and `erasure_reports` (the report as
    JSON). Create them with `SQLITE_SCHEMA` before use."""

    def __init__(self, database: SqliteDatabase) -> None:
        self._database = database

    async def bury(self, command: EraseSubject) -> None:
        subject, erased_at, request_id = (
            command.subject,
            millis(command.erased_at),
            command.request_id,
        )

        def bury(connection: sqlite3.Connection) -> None:
            row = connection.execute(
                "SELECT erased_at, request_ids FROM tombstones WHERE subject = ?", (subject,)
            ).fetchone()
            if row is None:
                ids = [request_id]
                latest = erased_at
            else:
                ids = orjson.loads(row[1])
                if request_id not in ids:
                    ids.append(request_id)
                latest = max(row[0], erased_at)
            connection.execute(
                "INSERT OR REPLACE INTO tombstones (subject, erased_at, request_ids) "
                "VALUES (?, ?, ?)",
                (subject, latest, orjson.dumps(ids).decode()),
            )

        await self._database.run(bury)

    async def tombstone(self, subject: str) -> Tombstone | None:
        return (await self.tombstones([subject])).get(subject)

    async def tombstones(self, subjects: Iterable[str]) -> dict[str, Tombstone]:
        wanted = list(dict.fromkeys(subjects))
        if not wanted:
            return {}

        def read(connection: sqlite3.Connection) -> list[Any]:
            marks = ",".join("?" * len(wanted))
            return connection.execute(
                "SELECT subject, erased_at, request_ids FROM tombstones "
                f"WHERE subject IN ({marks})",
                wanted,
            ).fetchall()

        return {
            subject: Tombstone(subject, from_millis(erased_at), tuple(orjson.loads(ids)))
            for subject, erased_at, ids in await self._database.run(read)
        }

    async def report(self, request_id: str) -> tuple[ErasureReported, bool] | None:
        row = await sqlite_row(
            self._database,
            "SELECT report, done FROM erasure_reports WHERE request_id = ?",
            request_id,
        )
        if row is None:
            return None
        return ErasureReported.model_validate_json(row[0], strict=False), bool(row[1])

    async def save_report(self, report: ErasureReported) -> None:
        values = (report.request_id, report.model_dump_json())
        times = (report.request_id, millis(report.reported_at))

        def save(connection: sqlite3.Connection) -> None:
            connection.execute(
                "INSERT OR IGNORE INTO erasure_reports (request_id, report, done) VALUES (?, ?, 0)",
                values,
            )
            connection.execute(
                "INSERT OR IGNORE INTO erasure_report_times (request_id, reported_at) "
                "VALUES (?, ?)",
                times,
            )

        await self._database.run(save)

    async def mark_done(self, request_id: str) -> None:
        await self._database.run(
            lambda connection: connection.execute(
                "UPDATE erasure_reports SET done = 1 WHERE request_id = ?", (request_id,)
            )
        )
        await self._database.scrub()

    async def count_reports_before(self, before: datetime) -> int:
        return await _REPORTS_BY_TIME.count(self._database, before)

    async def delete_reports_before(self, before: datetime) -> int:
        moment = millis(before)

        def delete(connection: sqlite3.Connection) -> int:
            ids = connection.execute(
                "SELECT request_id FROM erasure_report_times WHERE reported_at < ?", (moment,)
            ).fetchall()
            connection.executemany("DELETE FROM erasure_reports WHERE request_id = ?", ids)
            connection.executemany("DELETE FROM erasure_report_times WHERE request_id = ?", ids)
            return len(ids)

        return await self._database.run(delete)


async def open_erasure_records(database: Database) -> ErasureRecords:
    """The erasure records on the service's database, ready for use: on SQLite its tables are
    created (if missing); on MongoDB the reports' index."""
    if isinstance(database, SqliteDatabase):
        await database.create_schema(SQLITE_SCHEMA)
        return SqliteErasureRecords(database)
    records = MongoErasureRecords(database.documents)
    await records.prepare()
    return records
