"""The disclosure store's queries for the retention sweep, on SQLite (a part of
`SqliteDisclosureStore`; the port: store/port.py). Held disclosures are found by the index on
(status, recorded_at), the log by the one on its orders' `placed_at`."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from services.disclosure.store.port import CANCELLED, HELD
from shared.database import SqliteCutOff, sqlite_count
from shared.sqlite import SqliteDatabase, millis

HELD_BEFORE = "FROM disclosures WHERE status = ? AND recorded_at < ?"
_BY_ORDER_DATE = SqliteCutOff("FROM disclosures WHERE placed_at < ?")


class SqliteRetentionQueries:
    _database: SqliteDatabase

    async def count_held_before(self, before: datetime) -> int:
        return await sqlite_count(
            self._database, f"SELECT count(*) {HELD_BEFORE}", HELD, millis(before)
        )

    async def cancel_held_before(self, before: datetime, reason: str) -> int:
        values = (HELD, millis(before))

        def cancel(connection: sqlite3.Connection) -> int:
            ids = connection.execute(f"SELECT disclosure_id {HELD_BEFORE}", values).fetchall()
            connection.executemany(
                "UPDATE disclosures SET status = ?, hold_reason = ? WHERE disclosure_id = ?",
                [(CANCELLED, reason, disclosure_id) for (disclosure_id,) in ids],
            )
            connection.executemany("DELETE FROM held_disclosures WHERE disclosure_id = ?", ids)
            return len(ids)

        return await self._database.run(cancel)

    async def count_log_before(self, before: datetime) -> int:
        return await _BY_ORDER_DATE.count(self._database, before)

    async def delete_log_before(self, before: datetime) -> int:
        # Their people and any held copy go with them (ON DELETE CASCADE).
        return await _BY_ORDER_DATE.delete(self._database, before)
