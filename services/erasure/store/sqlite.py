"""The erasure store on SQLite: the embedded default (shared/sqlite.py).

Table `requests`: one row per erasure or access request, the `ErasureRequest` as JSON in
`document`, and beside it, as columns, what requests are found and ordered by: the person's
subject hash, the status, when it was received and when its next attempt is due (only while it
is open). Every method is one operation of the writer thread: a change that depends on what is
stored (a report taken only while it is pending, completion only once none is) is read and
written in that one operation, whatever else runs meanwhile.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from services.erasure.domain import CLOSED_STATUSES, OPEN_STATUSES, ErasureRequest
from services.erasure.store.port import Attempt
from shared.contracts.erasure import ErasureReported
from shared.database import sqlite_count
from shared.sqlite import SqliteDatabase, millis
from shared.times import aware, to_millis

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS requests (
        request_id TEXT PRIMARY KEY,
        subject TEXT NOT NULL,
        status TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        next_attempt_at INTEGER,
        document TEXT NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS requests_status ON requests (status, received_at)",
    "CREATE INDEX IF NOT EXISTS requests_received ON requests (received_at)",
    "CREATE INDEX IF NOT EXISTS requests_subject ON requests (subject, received_at)",
    "CREATE INDEX IF NOT EXISTS requests_due ON requests (next_attempt_at) "
    "WHERE next_attempt_at IS NOT NULL",
)
_OPEN = ",".join("?" * len(OPEN_STATUSES))
_DONE_BEFORE = (
    f"FROM requests WHERE status IN ({','.join('?' * len(CLOSED_STATUSES))}) AND received_at < ?"
)
# Ties in request id order, as on MongoDB; an index of a WITHOUT ROWID table ends with its key,
# so the index on `received_at` (or `subject, received_at`) serves this order without a sort.
_OLDEST_FIRST = "ORDER BY received_at, request_id"

Change = Callable[[ErasureRequest], ErasureRequest | None]


class SqliteErasureStore:
    def __init__(self, database: SqliteDatabase) -> None:
        self._database = database

    async def prepare(self) -> None:
        await self._database.create_schema(SCHEMA)

    async def add(self, request: ErasureRequest) -> ErasureRequest | None:
        row = _row(_stored(request))

        def add(connection: sqlite3.Connection) -> ErasureRequest | None:
            inserted = connection.execute(
                "INSERT OR IGNORE INTO requests "
                "(request_id, subject, status, received_at, next_attempt_at, document) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                row,
            ).rowcount
            return None if inserted else _read(connection, request.request_id)

        return await self._database.run(add)

    async def request(self, request_id: str) -> ErasureRequest | None:
        return await self._database.run(lambda connection: _read(connection, request_id))

    async def requests(self, open_only: bool) -> list[ErasureRequest]:
        if open_only:
            return await self._select(f"WHERE status IN ({_OPEN}) {_OLDEST_FIRST}", OPEN_STATUSES)
        return await self._select(_OLDEST_FIRST, ())

    async def requests_of(self, subject: str) -> list[ErasureRequest]:
        return await self._select(f"WHERE subject = ? {_OLDEST_FIRST}", (subject,))

    async def due(self, now: datetime) -> list[ErasureRequest]:
        return await self._select(
            "WHERE next_attempt_at <= ? ORDER BY next_attempt_at, request_id", (millis(now),)
        )

    async def cleared_dead_letters(self, request_id: str, removed: int, now: datetime) -> None:
        start = _moment(now)

        def clear(request: ErasureRequest) -> ErasureRequest:
            started = request.started_at
            return request.model_copy(
                update={
                    "own_dead_letters": request.own_dead_letters + removed,
                    "started_at": start if started is None else min(started, start),
                }
            )

        await self._change(request_id, clear)

    async def started(self, request_id: str, next_attempt_at: datetime) -> None:
        def start(request: ErasureRequest) -> ErasureRequest | None:
            if request.status != "received":
                return None
            return request.model_copy(
                update={"status": "in_progress", "attempts": 1, "next_attempt_at": next_attempt_at}
            )

        await self._change(request_id, start)

    async def attempted(self, request_id: str, attempt: Attempt) -> None:
        def ask_again(request: ErasureRequest) -> ErasureRequest | None:
            if request.status not in ("in_progress", "stuck"):
                return None
            return request.model_copy(update=attempt.changes())

        await self._change(request_id, ask_again)

    async def add_report(self, report: ErasureReported) -> ErasureRequest | None:
        def take(request: ErasureRequest) -> ErasureRequest | None:
            if report.service not in request.pending:
                return None
            return request.model_copy(
                update={
                    "pending": [name for name in request.pending if name != report.service],
                    "reports": {**request.reports, report.service: report},
                }
            )

        return await self._change(report.request_id, take)

    async def complete(self, request_id: str, now: datetime) -> ErasureRequest | None:
        def finish(request: ErasureRequest) -> ErasureRequest | None:
            if request.pending or not request.is_open:
                return None
            return request.model_copy(
                update={
                    "status": "completed",
                    "completed_at": now,
                    "next_attempt_at": None,
                    "stuck_since": None,
                }
            )

        return await self._change(request_id, finish)

    async def count_done_before(self, before: datetime) -> int:
        values = (*CLOSED_STATUSES, millis(before))
        return await sqlite_count(self._database, f"SELECT count(*) {_DONE_BEFORE}", *values)

    async def delete_done_before(self, before: datetime) -> int:
        values = (*CLOSED_STATUSES, millis(before))
        return await self._database.run(
            lambda connection: connection.execute(f"DELETE {_DONE_BEFORE}", values).rowcount
        )

    async def _select(self, clauses: str, parameters: tuple[Any, ...]) -> list[ErasureRequest]:
        rows = await self._database.run(
            lambda connection: connection.execute(
                f"SELECT document FROM requests {clauses}", parameters
            ).fetchall()
        )
        return [ErasureRequest.model_validate_json(document) for (document,) in rows]

    async def _change(self, request_id: str, change: Change) -> ErasureRequest | None:
        """Apply `change` to the stored request in one operation: the request as written, or
        None when there is none or `change` leaves it as it is (returns None)."""

        def apply(connection: sqlite3.Connection) -> ErasureRequest | None:
            request = _read(connection, request_id)
            changed = None if request is None else change(request)
            if changed is None:
                return None
            stored = _stored(changed)
            connection.execute(
                "UPDATE requests SET subject = ?, status = ?, received_at = ?, "
                "next_attempt_at = ?, document = ? WHERE request_id = ?",
                (*_row(stored)[1:], request_id),
            )
            return stored

        return await self._database.run(apply)


def _read(connection: sqlite3.Connection, request_id: str) -> ErasureRequest | None:
    row = connection.execute(
        "SELECT document FROM requests WHERE request_id = ?", (request_id,)
    ).fetchone()
    return None if row is None else ErasureRequest.model_validate_json(row[0])


def _row(request: ErasureRequest) -> tuple[Any, ...]:
    return (
        request.request_id,
        request.subject,
        request.status,
        millis(request.received_at),
        None if request.next_attempt_at is None else millis(request.next_attempt_at),
        request.model_dump_json(),
    )


def _moment(moment: datetime) -> datetime:
    """A moment as MongoDB keeps it: UTC, whole milliseconds."""
    return to_millis(aware(moment).astimezone(UTC))


def _as_stored(value: Any) -> Any:
    if isinstance(value, datetime):
        return _moment(value)
    if isinstance(value, dict):
        return {key: _as_stored(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_stored(item) for item in value]
    return value


def _stored(request: ErasureRequest) -> ErasureRequest:
    """The request with every moment in it (its reports' too) as both stores keep it."""
    return ErasureRequest.model_validate(_as_stored(request.model_dump()))
