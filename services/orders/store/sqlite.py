"""The orders store on SQLite: the embedded default (shared/sqlite.py).

Table `orders`: one row per order, the `Order` as JSON in `document`, and beside it, as columns,
what is searched by: the two people's subject hashes, when it was placed, and `kept_until`.
`order_erasures` names the erasure requests that stripped each order (the access report of an
erased person finds their retained ledgers by it). `profiles`: one row per role and subject hash.
Every method is one operation of the writer thread: atomic, whatever else runs meanwhile.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from services.orders.domain import ROLES, Order, Profile, Role, retention
from shared.database import sqlite_count, sqlite_row
from shared.erasure.records import SQLITE_SCHEMA as ERASURE_SCHEMA
from shared.erasure.records import SqliteErasureRecords
from shared.sqlite import SqliteDatabase, from_millis, millis

SCHEMA = (
    *ERASURE_SCHEMA,
    """CREATE TABLE IF NOT EXISTS orders (
        order_id TEXT PRIMARY KEY,
        placed_at INTEGER NOT NULL,
        buyer_subject TEXT,
        recipient_subject TEXT,
        kept_until TEXT,
        document TEXT NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS orders_buyer ON orders (buyer_subject, placed_at)",
    "CREATE INDEX IF NOT EXISTS orders_recipient ON orders (recipient_subject) "
    "WHERE recipient_subject IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS orders_kept_until ON orders (kept_until) "
    "WHERE kept_until IS NOT NULL",
    # The orders still holding their recipient's data, by when: the retention sweep's search.
    "CREATE INDEX IF NOT EXISTS orders_recipient_placed ON orders (placed_at) "
    "WHERE recipient_subject IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS order_erasures (
        request_id TEXT NOT NULL,
        order_id TEXT NOT NULL,
        PRIMARY KEY (request_id, order_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS order_erasures_order ON order_erasures (order_id)",
    """CREATE TABLE IF NOT EXISTS profiles (
        role TEXT NOT NULL,
        subject TEXT NOT NULL,
        as_of INTEGER NOT NULL,
        person TEXT NOT NULL,
        first_seen_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (role, subject)
    ) WITHOUT ROWID""",
    # A buyer's profile is as of their last order: the sweep finds who has expired by it.
    "CREATE INDEX IF NOT EXISTS profiles_as_of ON profiles (role, as_of)",
)
_RECIPIENTS_BEFORE = "FROM orders WHERE recipient_subject IS NOT NULL AND placed_at < ?"


class SqliteOrdersStore:
    def __init__(self, database: SqliteDatabase) -> None:
        self._database = database
        self.erasures = SqliteErasureRecords(database)

    async def prepare(self) -> None:
        await self._database.create_schema(SCHEMA)

    async def add_order(self, order: Order) -> bool:
        row = _row(order)

        def add(connection: sqlite3.Connection) -> bool:
            cursor = connection.execute(
                "INSERT OR IGNORE INTO orders "
                "(order_id, placed_at, buyer_subject, recipient_subject, kept_until, document) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )
            if cursor.rowcount == 0:
                return False
            connection.executemany(
                "INSERT OR IGNORE INTO order_erasures (request_id, order_id) VALUES (?, ?)",
                [(request_id, order.order_id) for request_id in order.erasures or []],
            )
            return True

        return await self._database.run(add)

    async def update_profile(self, profile: Profile) -> bool:
        now = millis(datetime.now(UTC))
        values = (
            profile.role,
            profile.subject,
            millis(profile.as_of),
            orjson.dumps(profile.person).decode(),
            now,
            now,
        )
        # One statement: the row is created, or updated only by an event newer than its own.
        return await self._database.run(
            lambda connection: (
                connection.execute(
                    "INSERT INTO profiles (role, subject, as_of, person, first_seen_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (role, subject) DO UPDATE SET as_of = excluded.as_of, "
                    "person = excluded.person, updated_at = excluded.updated_at "
                    "WHERE excluded.as_of > profiles.as_of",
                    values,
                ).rowcount
                > 0
            )
        )

    async def profile(self, role: Role, subject: str) -> Profile | None:
        row = await sqlite_row(
            self._database,
            "SELECT as_of, person FROM profiles WHERE role = ? AND subject = ?",
            role,
            subject,
        )
        if row is None:
            return None
        return Profile(
            subject=subject, role=role, as_of=from_millis(row[0]), person=orjson.loads(row[1])
        )

    async def order(self, order_id: str) -> Order | None:
        row = await sqlite_row(
            self._database, "SELECT document FROM orders WHERE order_id = ?", order_id
        )
        return None if row is None else Order.model_validate_json(row[0])

    async def orders_of(self, subject: str) -> list[Order]:
        rows = await self._database.run(lambda connection: _orders_of(connection, subject))
        return [Order.model_validate_json(row) for row in rows]

    async def retained_orders(self, request_ids: Iterable[str]) -> list[Order]:
        ids = list(dict.fromkeys(request_ids))
        if not ids:
            return []

        def read(connection: sqlite3.Connection) -> list[Any]:
            marks = ",".join("?" * len(ids))
            return connection.execute(
                "SELECT document FROM orders WHERE order_id IN "
                f"(SELECT order_id FROM order_erasures WHERE request_id IN ({marks})) "
                "ORDER BY placed_at",
                ids,
            ).fetchall()

        return [Order.model_validate_json(row[0]) for row in await self._database.run(read)]

    async def erase_profiles(self, subject: str) -> None:
        await self._database.run(
            lambda connection: connection.execute(
                "DELETE FROM profiles WHERE subject = ? AND role IN ('buyer', 'recipient')",
                (subject,),
            )
        )

    async def erase_from_order(self, order: Order, role: Role, request_id: str | None) -> None:
        subject = order.subject(role)
        if subject is None:
            return
        order_id = order.order_id
        kept = retention(order.placed_at)

        def erase(connection: sqlite3.Connection) -> None:
            row = connection.execute(
                "SELECT document FROM orders WHERE order_id = ?", (order_id,)
            ).fetchone()
            if row is None:
                return
            stored = Order.model_validate_json(row[0])
            if stored.subject(role) != subject:
                return
            erasures = stored.erasures
            if request_id is not None:
                erasures = sorted({*(stored.erasures or []), request_id})
            changes: dict[str, Any] = {
                role: None,
                f"{role}_subject": None,
                "retention": kept,
                "erasures": erasures,
            }
            stripped = stored.model_copy(update=changes)
            if all(stripped.person(other) is None for other in ROLES):
                stripped = stripped.model_copy(update={"kept_until": kept["until"]})
            connection.execute(
                "UPDATE orders SET buyer_subject = ?, recipient_subject = ?, kept_until = ?, "
                "document = ? WHERE order_id = ?",
                (*_row(stripped)[2:], order_id),
            )
            if request_id is not None:
                connection.execute(
                    "INSERT OR IGNORE INTO order_erasures (request_id, order_id) VALUES (?, ?)",
                    (request_id, order_id),
                )

        await self._database.run(erase)

    async def delete_expired_ledgers(self, before: str) -> int:
        def delete(connection: sqlite3.Connection) -> int:
            expired = [
                order_id
                for (order_id,) in connection.execute(
                    "SELECT order_id FROM orders WHERE kept_until < ?", (before,)
                )
            ]
            connection.executemany(
                "DELETE FROM order_erasures WHERE order_id = ?", [(i,) for i in expired]
            )
            connection.executemany("DELETE FROM orders WHERE order_id = ?", [(i,) for i in expired])
            return len(expired)

        return await self._database.run(delete)

    # --- the retention sweep ---------------------------------------------------------------------

    async def count_expired_ledgers(self, before: str) -> int:
        return await sqlite_count(
            self._database, "SELECT count(*) FROM orders WHERE kept_until < ?", before
        )

    async def profiles_before(self, role: Role, before: datetime) -> list[str]:
        values = (role, millis(before))
        rows = await self._database.run(
            lambda connection: connection.execute(
                "SELECT subject FROM profiles WHERE role = ? AND as_of < ? ORDER BY as_of",
                values,
            ).fetchall()
        )
        return [subject for (subject,) in rows]

    async def count_profiles_before(self, role: Role, before: datetime) -> int:
        return await sqlite_count(
            self._database,
            "SELECT count(*) FROM profiles WHERE role = ? AND as_of < ?",
            role,
            millis(before),
        )

    async def delete_profile_before(self, role: Role, subject: str, before: datetime) -> bool:
        values = (role, subject, millis(before))
        return await self._database.run(
            lambda connection: (
                connection.execute(
                    "DELETE FROM profiles WHERE role = ? AND subject = ? AND as_of < ?", values
                ).rowcount
                > 0
            )
        )

    async def orders_with_recipient_before(self, before: datetime) -> list[Order]:
        moment = millis(before)
        rows = await self._database.run(
            lambda connection: connection.execute(
                f"SELECT document {_RECIPIENTS_BEFORE} ORDER BY placed_at, order_id", (moment,)
            ).fetchall()
        )
        return [Order.model_validate_json(document) for (document,) in rows]

    async def count_orders_with_recipient_before(self, before: datetime) -> int:
        return await sqlite_count(
            self._database, f"SELECT count(*) {_RECIPIENTS_BEFORE}", millis(before)
        )


def _row(order: Order) -> tuple[Any, ...]:
    return (
        order.order_id,
        millis(order.placed_at),
        order.buyer_subject,
        order.recipient_subject,
        order.kept_until,
        order.model_dump_json(),
    )


def _orders_of(connection: sqlite3.Connection, subject: str) -> list[str]:
    # Two index searches joined; one OR over two columns would scan the table.
    return [
        row[0]
        for row in connection.execute(
            "SELECT document, placed_at FROM orders WHERE buyer_subject = ? "
            "UNION SELECT document, placed_at FROM orders WHERE recipient_subject = ? "
            "ORDER BY placed_at DESC",
            (subject, subject),
        )
    ]
