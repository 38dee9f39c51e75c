"""Every command staff send a service, kept: who, when, what, on whom, and how it went.

Each service keeps its own audit log in its own database (`AuditRecords`: MongoDB's `audit`
collection or SQLite's `audit` table). The command
path in shared/commands.py writes one entry for every command, whatever its outcome, before
the reply goes out; a reply whose entry could not be written is withheld. Entries are only ever
inserted, and deleted when their retention ends (the daily sweep, shared/retention_sweep.py).
A command names a person by `email`: the entry keeps the keyed subject hash (shared.identity),
never the email; of the rest it keeps only ids (`TARGET_FIELDS`), never names, addresses or
free text. `rekisteri audit list` reads every service's log.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from faststream.rabbit import RabbitBroker
from pydantic import BaseModel
from pymongo import ASCENDING, DESCENDING, IndexModel

from shared.contracts.runtime import AuditEntry, AuditOutcome
from shared.database import Database, MongoDocuments, SqliteCutOff, adapter_for
from shared.identity import SubjectHasher
from shared.settings import ServiceSettings
from shared.sqlite import SqliteDatabase, millis
from shared.times import to_millis

AUDIT_LOG = "audit_log"
"""Where the broker's context holds the service's `AuditLog` (see `open_audit_log`)."""
COLLECTION = "audit"
TARGET_FIELDS = (
    "provider_id",
    "order_id",
    "request_id",
    "disclosure_id",
    "queue",
    "ids",
    "purpose",
    "status",
)
_COMMAND_NAME = re.compile(r"^[a-z][a-z.]{0,63}$")


class AuditRecords(Protocol):
    """Where a service's audit entries are kept: only ever appended to, and deleted at the end
    of their retention."""

    async def prepare(self) -> None: ...

    async def append(self, entry: AuditEntry) -> None: ...

    async def entries(
        self, since: datetime | None, actor: str | None, limit: int
    ) -> list[AuditEntry]:
        """Newest first."""
        ...

    async def count_before(self, before: datetime) -> int:
        """How many entries are from before `before` (the retention sweep's preview)."""
        ...

    async def delete_before(self, before: datetime) -> int:
        """Delete the entries from before `before`, whose retention has ended; how many."""
        ...


class MongoAuditRecords:
    def __init__(self, documents: MongoDocuments) -> None:
        self._entries = documents[COLLECTION]

    async def prepare(self) -> None:
        await self._entries.create_indexes(
            [
                IndexModel([("at", DESCENDING)]),
                IndexModel([("actor", ASCENDING), ("at", DESCENDING)]),
            ]
        )

    async def append(self, entry: AuditEntry) -> None:
        await self._entries.insert_one(entry.model_dump())

    async def entries(
        self, since: datetime | None, actor: str | None, limit: int
    ) -> list[AuditEntry]:
        query: dict[str, Any] = {}
        if actor is not None:
            query["actor"] = actor
        if since is not None:
            query["at"] = {"$gte": since}
        cursor = self._entries.find(query, {"_id": 0}).sort("at", DESCENDING).limit(limit)
        return [AuditEntry.model_validate(document, strict=False) async for document in cursor]

    async def count_before(self, before: datetime) -> int:
        return await self._entries.count_documents({"at": {"$lt": before}})

    async def delete_before(self, before: datetime) -> int:
        return (await self._entries.delete_many({"at": {"$lt": before}})).deleted_count


_BY_TIME = SqliteCutOff("FROM audit WHERE at < ?")


class SqliteAuditRecords:
    """Table `audit`: the time and actor as columns to search by, the entry as JSON."""

    def __init__(self, database: SqliteDatabase) -> None:
        self._database = database

    async def prepare(self) -> None:
        await self._database.create_schema(
            [
                """CREATE TABLE IF NOT EXISTS audit (
                    id INTEGER PRIMARY KEY,
                    at INTEGER NOT NULL,
                    actor TEXT,
                    entry TEXT NOT NULL
                )""",
                "CREATE INDEX IF NOT EXISTS audit_at ON audit (at)",
                "CREATE INDEX IF NOT EXISTS audit_actor_at ON audit (actor, at)",
            ]
        )

    async def append(self, entry: AuditEntry) -> None:
        values = (millis(entry.at), entry.actor, entry.model_dump_json())
        await self._database.run(
            lambda connection: connection.execute(
                "INSERT INTO audit (at, actor, entry) VALUES (?, ?, ?)", values
            )
        )

    async def entries(
        self, since: datetime | None, actor: str | None, limit: int
    ) -> list[AuditEntry]:
        conditions: list[str] = []
        values: list[Any] = []
        if actor is not None:
            conditions.append("actor = ?")
            values.append(actor)
        if since is not None:
            conditions.append("at >= ?")
            values.append(millis(since))
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""

        def read(connection: sqlite3.Connection) -> list[Any]:
            return connection.execute(
                f"SELECT entry FROM audit {where} ORDER BY at DESC, id DESC LIMIT ?",
                (*values, limit),
            ).fetchall()

        return [
            AuditEntry.model_validate_json(row[0], strict=False)
            for row in await self._database.run(read)
        ]

    async def count_before(self, before: datetime) -> int:
        return await _BY_TIME.count(self._database, before)

    async def delete_before(self, before: datetime) -> int:
        return await _BY_TIME.delete(self._database, before)


def audit_records(database: Database) -> AuditRecords:
    records: AuditRecords = adapter_for(database, SqliteAuditRecords, MongoAuditRecords)
    return records


class AuditLog:
    def __init__(
        self,
        records: AuditRecords,
        service: str,
        hasher: SubjectHasher,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._records = records
        self._service = service
        self._hasher = hasher
        self.clock = clock

    async def record(
        self,
        *,
        actor: str | None,
        command: BaseModel | None,
        body: bytes,
        outcome: AuditOutcome,
        count: int | None = None,
        message_id: str | None = None,
    ) -> None:
        """Append one entry; `command` is None when the body could not be read as a command."""
        fields = command.model_dump(mode="json") if command is not None else {}
        email = fields.get("email")
        entry = AuditEntry(
            at=to_millis(self.clock()),
            service=self._service,
            actor=actor,
            command=fields.get("command") or _claimed_command(body),
            outcome=outcome,
            subject=self._hasher(email) if email else None,
            targets={key: fields[key] for key in TARGET_FIELDS if fields.get(key) is not None},
            count=count,
            message_id=message_id,
        )
        await self._records.append(entry)

    async def entries(
        self, since: datetime | None, actor: str | None, limit: int
    ) -> list[AuditEntry]:
        """Newest first."""
        return await self._records.entries(since, actor, limit)

    async def count_before(self, before: datetime) -> int:
        return await self._records.count_before(before)

    async def delete_before(self, before: datetime) -> int:
        """Delete the entries whose retention has ended (shared/retention_sweep.py)."""
        return await self._records.delete_before(before)


def _claimed_command(body: bytes) -> str:
    """The name an unreadable command gives itself, if it is one; never any other content."""
    try:
        claimed = orjson.loads(body).get("command")
    except (orjson.JSONDecodeError, AttributeError):
        return "unreadable"
    return claimed if isinstance(claimed, str) and _COMMAND_NAME.match(claimed) else "unreadable"


async def open_audit_log(
    settings: ServiceSettings, database: Database, broker: RabbitBroker
) -> AuditLog:
    """The service's audit log, indexed, where the broker's command handlers find it."""
    records = audit_records(database)
    await records.prepare()
    audit = AuditLog(
        records,
        settings.service_name,
        SubjectHasher(settings.identity_hash_key.get_secret_value()),
    )
    broker.context.set_global(AUDIT_LOG, audit)
    return audit
