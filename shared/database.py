"""Connects a service to its own database: MongoDB in production, SQLite where none runs.

`MONGODB_URL` names a real MongoDB (production, docker compose): the service keeps its slice in
its own database there. Unset, the service keeps its data in one SQLite file,
`DATA_DIR/<service>.sqlite3` (shared/sqlite.py); `memory://` keeps it in memory only (unit
tests, benchmarks). Each service's `store` package picks its adapter by the type of connection;
nothing above the store knows which one it has.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.settings import ServiceSettings
from shared.sqlite import SqliteDatabase, millis
from shared.urls import mask_password

MEMORY_URL = "memory://"
MongoDocuments = AsyncDatabase[dict[str, Any]]
Collection = AsyncCollection[dict[str, Any]]

log = logging.getLogger(__name__)


class StoreError(RuntimeError):
    """The service's data cannot be used as it is; the message says what to do."""


@dataclass
class MongoDatabase:
    """A service's own database on a MongoDB server."""

    documents: MongoDocuments
    client: AsyncMongoClient[dict[str, Any]]

    async def ping(self) -> bool:
        try:
            await self.documents.command("ping")
        except Exception:  # readiness reports the failure; the reason is in the driver's log
            return False
        return True

    async def close(self) -> None:
        await self.client.close()


Database = MongoDatabase | SqliteDatabase
Adapter = TypeVar("Adapter")


def adapter_for(
    database: Database,
    sqlite: Callable[[SqliteDatabase], Adapter],
    mongo: Callable[[MongoDocuments], Adapter],
) -> Adapter:
    """The store adapter for the kind of database the service has: the one place that asks."""
    if isinstance(database, SqliteDatabase):
        return sqlite(database)
    return mongo(database.documents)


def describe_store(settings: ServiceSettings) -> str:
    """Where the data lives, fit for a log line (a MongoDB password is masked)."""
    url = settings.mongodb_url
    if url is None:
        return f"SQLite file {sqlite_path(settings)}"
    if url == MEMORY_URL:
        return "SQLite in memory: data is lost when the service stops"
    return f"MongoDB at {mask_password(url)}"


def sqlite_path(settings: ServiceSettings) -> Path:
    return Path(settings.data_dir) / f"{settings.service_name}.sqlite3"


def refuse_old_embedded_store(settings: ServiceSettings) -> None:
    """The embedded store before SQLite kept a directory per service with a journal; it only
    ever held development data, and is never half-read."""
    old = Path(settings.data_dir) / settings.service_name
    if (old / "journal.jsonl").exists() or (old / "snapshot.jsonl").exists():
        raise StoreError(
            f"{old} holds data of the old embedded store (mongomock journal), which this version "
            f"no longer reads; it only ever held development data: remove it (rm -r {old}) and "
            "start again"
        )


async def connect_database(settings: ServiceSettings) -> Database:
    url = settings.mongodb_url
    if url is not None and url != MEMORY_URL:
        # journal=True: a write is acknowledged only once it is in the server's journal, so a
        # mongod crash cannot lose what the broker has already been told is done.
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            url,
            tz_aware=True,
            appname=settings.service_name,
            w=settings.mongodb_write_concern,
            journal=True,
        )
        return MongoDatabase(client[settings.database_name], client)
    if url == MEMORY_URL:
        log.warning("data is kept in memory only and is lost when the service stops")
        return await SqliteDatabase.open(None)
    refuse_old_embedded_store(settings)
    return await SqliteDatabase.open(sqlite_path(settings))


# Conditional upserts on MongoDB: apply an update to the document if it meets a condition, or
# create the document if it is missing. A DuplicateKeyError has two meanings: the document exists
# but fails the condition (what is stored wins), or a concurrent upsert inserted the same `_id`
# between our match and our insert (the server retries that by itself only for filters that are
# equality on the unique key alone; ours carry `$lt`/`$or`). One retry tells them apart: the
# document exists by then, so a second DuplicateKeyError can only mean the stored one wins.


async def conditional_upsert(
    collection: Collection, document_id: Any, condition: dict[str, Any], update: dict[str, Any]
) -> bool:
    """The conditional upsert; True when it changed or created the document."""
    for attempt in range(2):
        try:
            result = await collection.update_one(
                {"_id": document_id, **condition}, update, upsert=True
            )
        except DuplicateKeyError:
            if attempt == 1:
                return False
            continue
        return result.modified_count > 0 or result.upserted_id is not None
    return False


async def conditional_upsert_returning(
    collection: Collection, document_id: Any, condition: dict[str, Any], update: dict[str, Any]
) -> dict[str, Any] | None:
    """The conditional upsert; the document as stored afterwards, whichever write won (None:
    deleted meanwhile)."""
    for attempt in range(2):
        try:
            return await collection.find_one_and_update(
                {"_id": document_id, **condition},
                update,
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            if attempt == 1:
                break
    return await collection.find_one({"_id": document_id})


async def insert_new(collection: Collection, document_id: Any, document: dict[str, Any]) -> bool:
    """Insert `document` under `document_id` unless that id is taken (the stored one is left as
    it is); True when it was new."""
    try:
        await collection.insert_one({"_id": document_id, **document})
    except DuplicateKeyError:
        return False
    return True


# --- SQLite reads every store makes the same way ---------------------------------------------


async def sqlite_row(database: SqliteDatabase, query: str, *parameters: object) -> Any | None:
    """The first row `query` answers, None when there is none: one read in the writer thread."""
    return await database.run(lambda connection: connection.execute(query, parameters).fetchone())


async def sqlite_count(database: SqliteDatabase, query: str, *parameters: object) -> int:
    """What `query`, a `SELECT count(*) ...`, counts."""
    row = await sqlite_row(database, query, *parameters)
    return int(row[0])


async def sqlite_changed(database: SqliteDatabase, statement: str, *parameters: object) -> int:
    """How many rows `statement` (an UPDATE or DELETE) changed."""
    return await database.run(lambda connection: connection.execute(statement, parameters).rowcount)


@dataclass(frozen=True)
class SqliteCutOff:
    """The rows from before a moment, as `rows` says: `FROM <table> WHERE <column> < ?`, the
    moment in milliseconds. A retention sweep counts and deletes them by the same condition."""

    rows: str

    async def count(self, database: SqliteDatabase, before: datetime) -> int:
        return await sqlite_count(database, f"SELECT count(*) {self.rows}", millis(before))

    async def delete(self, database: SqliteDatabase, before: datetime) -> int:
        return await sqlite_changed(database, f"DELETE {self.rows}", millis(before))
