"""The disclosure store on SQLite: the embedded default (shared/sqlite.py).

`providers`: the registry, one row per provider. `disclosures`: the log, one row per order and
provider, with a column for everything it is searched, sorted or filtered by, and the product
ids and fields sent as JSON lists. `disclosure_subjects` names the people of each entry (by hash,
or an erased person's reference, with their role), so that what names a person is one index
search away (the schema, and the migration of files from before roles: sqlite_schema.py).
`held_disclosures` keeps the copy of a held disclosure's data, in a table of its own so that
sending or cancelling it deletes the row, not a flag. Both go with their entry (foreign keys).
Every method is one operation of the writer thread: atomic, whatever else runs meanwhile.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson

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
from services.disclosure.store.sqlite_retention import SqliteRetentionQueries
from services.disclosure.store.sqlite_schema import SCHEMA, UNKNOWN_ROLE, add_roles
from shared.contracts.disclosure_ops import HeldDisclosure, SentDisclosure
from shared.contracts.disclosures import Disclosure
from shared.contracts.providers import Provider
from shared.database import sqlite_row
from shared.erasure.records import SqliteErasureRecords
from shared.sqlite import SqliteDatabase, from_millis, millis

PROVIDER_COLUMNS = ", ".join(Provider.model_fields)
HELD_COLUMNS = (
    "disclosure_id, order_id, provider_id, status, hold_reason AS reason, recorded_at AS held_since"
)
SENT_COLUMNS = (
    "disclosure_id, order_id, provider_id, sent_at, fields, product_ids, message_id, placed_at"
)
ENTRY_COLUMNS = (
    "disclosure_id, order_id, provider_id, status, product_ids, fields, placed_at, recorded_at, "
    "sent_at, released_by, hold_reason, kept_until, "
    "EXISTS (SELECT 1 FROM held_disclosures AS h WHERE h.disclosure_id = d.disclosure_id) "
    "AS holds_data"
)
NAMING = "SELECT disclosure_id FROM disclosure_subjects WHERE subject"
NOT_SENT_SQL = "status IN (" + ", ".join(f"'{status}'" for status in NOT_SENT) + ")"
# A person's entries are found by the subject index, then filtered by status. The unary `+`
# keeps the status index out of the planner's reach: without statistics it would rather walk
# every entry of that status (nearly the whole log, for `sent`) and test each for the person.
OF_STATUS = "+status = ?"
NOT_SENT_OF_PERSON = "+" + NOT_SENT_SQL


class SqliteDisclosureStore(SqliteRetentionQueries):
    def __init__(self, database: SqliteDatabase) -> None:
        self._database = database
        self.erasures = SqliteErasureRecords(database)

    async def prepare(self) -> None:
        await self._database.run(add_roles)
        await self._database.create_schema(SCHEMA)

    # --- providers -----------------------------------------------------------------------------

    async def add_provider(self, provider: Provider) -> bool:
        moments = {name: millis(getattr(provider, name)) for name in ("created_at", "changed_at")}
        row = {**provider.model_dump(), **moments}
        values = ", ".join(f":{name}" for name in row)
        return await self._database.run(
            lambda connection: (
                connection.execute(
                    f"INSERT OR IGNORE INTO providers ({', '.join(row)}) VALUES ({values})", row
                ).rowcount
                > 0
            )
        )

    async def provider(self, provider_id: str) -> Provider | None:
        found = await self.providers([provider_id])
        return found[0] if found else None

    async def providers(self, provider_ids: Iterable[str] | None = None) -> list[Provider]:
        ids = None if provider_ids is None else list(dict.fromkeys(provider_ids))
        if ids == []:
            return []

        def read(connection: sqlite3.Connection) -> list[dict[str, Any]]:
            if ids is None:
                # The whole registry (staff's listing; its cost is the answer's size), walked
                # in key order: the range says so to the planner and to the suite's scan check.
                return _rows(
                    connection,
                    f"SELECT {PROVIDER_COLUMNS} FROM providers WHERE provider_id >= '' "
                    "ORDER BY provider_id",
                )
            return _rows(
                connection,
                f"SELECT {PROVIDER_COLUMNS} FROM providers WHERE provider_id IN ({_marks(ids)}) "
                "ORDER BY provider_id",
                ids,
            )

        return [_provider(row) for row in await self._database.run(read)]

    async def change_provider(
        self, provider_id: str, changes: dict[str, Any], actor: str, now: datetime
    ) -> Provider | None:
        if unknown := set(changes) - PROVIDER_FIELDS:
            raise ValueError(f"not fields a provider change may set: {sorted(unknown)}")
        # Column names only from the fixed set above; the values are parameters.
        columns = [*sorted(changes), "changed_at", "changed_by"]
        values = [*(changes[column] for column in sorted(changes)), millis(now), actor]

        def change(connection: sqlite3.Connection) -> list[dict[str, Any]]:
            assignments = ", ".join(f"{column} = ?" for column in columns)
            connection.execute(
                f"UPDATE providers SET {assignments} WHERE provider_id = ?",
                (*values, provider_id),
            )
            return _rows(
                connection,
                f"SELECT {PROVIDER_COLUMNS} FROM providers WHERE provider_id = ?",
                (provider_id,),
            )

        rows = await self._database.run(change)
        return _provider(rows[0]) if rows else None

    # --- disclosure log ------------------------------------------------------------------------

    async def is_recorded(self, disclosure_id: str) -> bool:
        row = await sqlite_row(
            self._database, "SELECT 1 FROM disclosures WHERE disclosure_id = ?", disclosure_id
        )
        return row is not None

    async def record_sent(
        self, disclosure: Disclosure, people: People, now: datetime, released_by: str | None = None
    ) -> None:
        fields = disclosed_fields(disclosure)
        disclosure_id = str(disclosure.disclosure_id)
        named = _people_rows(disclosure_id, people)
        row = (
            *_entry_row(disclosure),
            SENT,
            orjson.dumps(fields).decode(),
            millis(now),
            millis(now),
            released_by,
        )

        def record(connection: sqlite3.Connection) -> None:
            # A new entry, or a held one (or a repeat) updated; either way its held copy goes.
            connection.execute(
                "INSERT INTO disclosures (disclosure_id, order_id, provider_id, message_id, "
                "product_ids, placed_at, status, fields, recorded_at, sent_at, released_by) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (disclosure_id) DO UPDATE SET order_id = excluded.order_id, "
                "provider_id = excluded.provider_id, message_id = excluded.message_id, "
                "product_ids = excluded.product_ids, placed_at = excluded.placed_at, "
                "status = excluded.status, fields = excluded.fields, "
                "sent_at = excluded.sent_at, "
                "released_by = coalesce(excluded.released_by, disclosures.released_by), "
                "hold_reason = NULL, claimed_at = NULL",
                row,
            )
            connection.execute(
                "DELETE FROM disclosure_subjects WHERE disclosure_id = ?", (disclosure_id,)
            )
            connection.executemany(INSERT_PERSON, named)
            connection.execute(
                "DELETE FROM held_disclosures WHERE disclosure_id = ?", (disclosure_id,)
            )

        await self._database.run(record)

    async def record_held(
        self, disclosure: Disclosure, people: People, reason: str, now: datetime
    ) -> None:
        disclosure_id = str(disclosure.disclosure_id)
        row = (*_entry_row(disclosure), HELD, reason, millis(now))
        named = _people_rows(disclosure_id, people)
        copy = disclosure.model_dump_json()

        def record(connection: sqlite3.Connection) -> None:
            added = connection.execute(
                "INSERT OR IGNORE INTO disclosures (disclosure_id, order_id, provider_id, "
                "message_id, product_ids, placed_at, status, hold_reason, recorded_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            ).rowcount
            if not added:
                return
            connection.executemany(INSERT_PERSON, named)
            connection.execute(
                "INSERT INTO held_disclosures (disclosure_id, disclosure) VALUES (?, ?)",
                (disclosure_id, copy),
            )

        await self._database.run(record)

    async def held(self, order_id: str | None = None) -> list[HeldDisclosure]:
        if order_id is None:
            return await self._held(NOT_SENT_SQL, ())
        return await self._held(f"order_id = ? AND {NOT_SENT_SQL}", (order_id,))

    async def note_hold_reason(self, disclosure_id: str, reason: str) -> None:
        await self._database.run(
            lambda connection: connection.execute(
                "UPDATE disclosures SET hold_reason = ? WHERE disclosure_id = ? AND status = ?",
                (reason, disclosure_id, HELD),
            )
        )

    async def claim_for_release(self, disclosure_id: str, now: datetime) -> Disclosure | None:
        claimed_at, expired = millis(now), millis(now - RELEASE_LEASE)

        def claim(connection: sqlite3.Connection) -> Any:
            claimed = connection.execute(
                "UPDATE disclosures SET status = ?, claimed_at = ? WHERE disclosure_id = ? "
                "AND (status = ? OR (status = ? AND claimed_at < ?))",
                (RELEASING, claimed_at, disclosure_id, HELD, RELEASING, expired),
            ).rowcount
            if not claimed:
                return None
            return connection.execute(
                "SELECT disclosure FROM held_disclosures WHERE disclosure_id = ?",
                (disclosure_id,),
            ).fetchone()

        row = await self._database.run(claim)
        return None if row is None else Disclosure.model_validate_json(row[0], strict=False)

    async def give_back(self, disclosure_id: str) -> None:
        await self._database.run(
            lambda connection: connection.execute(
                "UPDATE disclosures SET status = ?, claimed_at = NULL "
                "WHERE disclosure_id = ? AND status = ?",
                (HELD, disclosure_id, RELEASING),
            )
        )

    async def sent_naming(
        self, subject: str | list[str], limit: int | None = None
    ) -> list[SentDisclosure]:
        names = [subject] if isinstance(subject, str) else list(dict.fromkeys(subject))
        conditions = f"disclosure_id IN ({NAMING} IN ({_marks(names)})) AND {OF_STATUS}"
        return await self._sent(conditions, [*names, SENT], limit)

    async def sent_to(self, provider_id: str, limit: int | None = None) -> list[SentDisclosure]:
        return await self._sent("provider_id = ? AND status = ?", [provider_id, SENT], limit)

    async def _sent(
        self, conditions: str, parameters: list[Any], limit: int | None
    ) -> list[SentDisclosure]:
        statement = (
            f"SELECT {SENT_COLUMNS} FROM disclosures WHERE {conditions} "
            "ORDER BY sent_at DESC, disclosure_id"
        )
        if limit is not None:
            statement += " LIMIT ?"
            parameters.append(limit)
        rows = await self._database.run(lambda connection: _rows(connection, statement, parameters))
        return [_sent(row) for row in rows]

    async def held_of(self, subject: str) -> list[HeldDisclosure]:
        return await self._held(
            f"disclosure_id IN ({NAMING} = ?) AND {NOT_SENT_OF_PERSON}", (subject,)
        )

    async def cancel_held(self, subject: str, reason: str) -> None:
        def cancel(connection: sqlite3.Connection) -> None:
            ids = [
                (disclosure_id,)
                for (disclosure_id,) in connection.execute(
                    f"SELECT disclosure_id FROM disclosures "
                    f"WHERE disclosure_id IN ({NAMING} = ?) AND {NOT_SENT_OF_PERSON}",
                    (subject,),
                )
            ]
            connection.executemany(
                "UPDATE disclosures SET status = ?, hold_reason = ?, claimed_at = NULL "
                "WHERE disclosure_id = ?",
                [(CANCELLED, reason, disclosure_id) for (disclosure_id,) in ids],
            )
            connection.executemany("DELETE FROM held_disclosures WHERE disclosure_id = ?", ids)

        await self._database.run(cancel)

    async def replace_subject(self, subject: str, reference: str) -> None:
        def replace(connection: sqlite3.Connection) -> None:
            connection.execute(
                "INSERT OR IGNORE INTO disclosure_subjects (disclosure_id, subject, role) "
                "SELECT disclosure_id, ?, role FROM disclosure_subjects WHERE subject = ?",
                (reference, subject),
            )
            connection.execute("DELETE FROM disclosure_subjects WHERE subject = ?", (subject,))

        await self._database.run(replace)

    async def entries_naming(self, subject: str) -> list[NamedEntry]:
        def read(connection: sqlite3.Connection) -> tuple[list[Any], dict[str, list[Named]]]:
            rows = connection.execute(
                "SELECT disclosure_id, placed_at FROM disclosures "
                f"WHERE disclosure_id IN ({NAMING} = ?) ORDER BY disclosure_id",
                (subject,),
            ).fetchall()
            return rows, _people_of(connection, f"{NAMING} = ?", (subject,))

        rows, people = await self._database.run(read)
        return [
            NamedEntry(disclosure_id, _subjects(people[disclosure_id]), _moment(placed_at))
            for disclosure_id, placed_at in rows
        ]

    async def log_of(self, order_id: str) -> list[LogEntry]:
        def read(
            connection: sqlite3.Connection,
        ) -> tuple[list[dict[str, Any]], dict[str, list[Named]]]:
            rows = _rows(
                connection,
                f"SELECT {ENTRY_COLUMNS} FROM disclosures AS d WHERE order_id = ? "
                "ORDER BY provider_id, disclosure_id",
                (order_id,),
            )
            ids = "SELECT disclosure_id FROM disclosures WHERE order_id = ?"
            return rows, _people_of(connection, ids, (order_id,))

        rows, people = await self._database.run(read)
        return [_entry(row, people[row["disclosure_id"]]) for row in rows]

    async def keep_until(self, disclosure_id: str, until: str) -> None:
        await self._database.run(
            lambda connection: connection.execute(
                "UPDATE disclosures SET kept_until = ? WHERE disclosure_id = ?",
                (until, disclosure_id),
            )
        )

    async def delete_expired_entries(self, before: str) -> int:
        # Their people and any held copy go with them (ON DELETE CASCADE).
        return await self._database.run(
            lambda connection: (
                connection.execute(
                    "DELETE FROM disclosures WHERE kept_until < ?", (before,)
                ).rowcount
            )
        )

    async def _held(self, where: str, parameters: Sequence[object]) -> list[HeldDisclosure]:
        statement = (
            f"SELECT {HELD_COLUMNS} FROM disclosures WHERE {where} "
            "ORDER BY recorded_at, disclosure_id"
        )
        rows = await self._database.run(lambda connection: _rows(connection, statement, parameters))
        return [_held(row) for row in rows]


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values))


def _moment(value: int | None) -> datetime | None:
    return None if value is None else from_millis(value)


def _entry_row(disclosure: Disclosure) -> tuple[Any, ...]:
    return (
        str(disclosure.disclosure_id),
        disclosure.order_id,
        disclosure.provider_id,
        str(disclosure.disclosure_id),
        orjson.dumps([item.product_id for item in disclosure.items]).decode(),
        millis(disclosure.occurred_at),
    )


INSERT_PERSON = "INSERT INTO disclosure_subjects (disclosure_id, subject, role) VALUES (?, ?, ?)"


def _people_rows(disclosure_id: str, people: People) -> list[tuple[str, str, str]]:
    return [
        (disclosure_id, person.subject, person.role or UNKNOWN_ROLE) for person in people_of(people)
    ]


def _people_of(
    connection: sqlite3.Connection, ids: str, parameters: Sequence[object]
) -> dict[str, list[Named]]:
    """The people named by each entry the query `ids` selects."""
    people: dict[str, list[Named]] = defaultdict(list)
    for disclosure_id, subject, role in connection.execute(
        "SELECT disclosure_id, subject, role FROM disclosure_subjects "
        f"WHERE disclosure_id IN ({ids})",
        parameters,
    ):
        people[disclosure_id].append(Named(subject, role or None))
    return people


def _subjects(people: list[Named]) -> tuple[str, ...]:
    return tuple(sorted({person.subject for person in people}))


def _rows(
    connection: sqlite3.Connection, statement: str, parameters: Sequence[object] = ()
) -> list[dict[str, Any]]:
    """The rows as dicts by column name (or alias)."""
    cursor = connection.execute(statement, parameters)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def _provider(row: dict[str, Any]) -> Provider:
    moments = {name: from_millis(row[name]) for name in ("created_at", "changed_at")}
    return Provider.model_validate({**row, **moments})


def _held(row: dict[str, Any]) -> HeldDisclosure:
    return HeldDisclosure.model_validate({**row, "held_since": from_millis(row["held_since"])})


def _sent(row: dict[str, Any]) -> SentDisclosure:
    return SentDisclosure.model_validate(
        {
            **row,
            "sent_at": from_millis(row["sent_at"]),
            "placed_at": _moment(row["placed_at"]),
            "fields": orjson.loads(row["fields"]),
            "product_ids": orjson.loads(row["product_ids"]),
        }
    )


def _entry(row: dict[str, Any], people: list[Named]) -> LogEntry:
    fields = row["fields"]
    return LogEntry(
        **{
            **row,
            "subjects": _subjects(people),
            "people": tuple(people_of(people)),
            "product_ids": tuple(orjson.loads(row["product_ids"])),
            "fields": None if fields is None else tuple(orjson.loads(fields)),
            "placed_at": _moment(row["placed_at"]),
            "recorded_at": from_millis(row["recorded_at"]),
            "sent_at": _moment(row["sent_at"]),
            "holds_data": bool(row["holds_data"]),
        }
    )
