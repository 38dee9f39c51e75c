"""The consent store on SQLite: the embedded default (shared/sqlite.py).

Tables:
- `facts`: one row per fact (`fact_id`), the fact as JSON beside the columns searched or sorted
  by (subject hash, when it happened) and when it was recorded.
- `people`: one row per subject hash: the projection as JSON and `facts_seen`, the announced
  summary, and the contact of the latest order with its position (`contact_as_of` ms,
  `contact_event_id`). A NULL `facts_seen` or `contact` means not known yet.
- `audience`: one row per purpose and subject hash, for exactly the people who may be contacted
  for the purpose and are addressable (a contact is known). Kept in step with `people` by every
  write that changes either, in the same operation, so that the export and its count are
  searches of its primary key, and paging through it by subject hash costs the same on the
  last page of a million as on the first.
- `suppressions`: since when (ms) an erased person who had objected stays suppressed.
- `activity`: per subject hash, when (ms) their latest fact or order happened, written in the
  same operation as the fact or contact; a file from before it was kept gets it filled in from
  `facts` and `people` when the table is made.

Every method is one operation of the writer thread: atomic, whatever else runs meanwhile. The
export reads one page per operation, so that other writes go on between its pages.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson

from services.consent.domain import FACT, AnyFact, ConsentState, Person
from shared.contracts.consent import PURPOSES, ConsentSummary, Contact, Purpose
from shared.database import SqliteCutOff, sqlite_count, sqlite_row
from shared.erasure.records import SQLITE_SCHEMA as ERASURE_SCHEMA
from shared.erasure.records import SqliteErasureRecords
from shared.sqlite import SqliteDatabase, from_millis, millis

SCHEMA = (
    *ERASURE_SCHEMA,
    """CREATE TABLE IF NOT EXISTS facts (
        fact_id TEXT PRIMARY KEY,
        subject TEXT NOT NULL,
        occurred_at INTEGER NOT NULL,
        recorded_at INTEGER NOT NULL,
        fact TEXT NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS facts_subject ON facts (subject, occurred_at)",
    """CREATE TABLE IF NOT EXISTS people (
        subject TEXT PRIMARY KEY,
        facts_seen INTEGER,
        state TEXT,
        announced TEXT,
        contact TEXT,
        contact_as_of INTEGER,
        contact_event_id TEXT
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS audience (
        purpose TEXT NOT NULL,
        subject TEXT NOT NULL,
        PRIMARY KEY (purpose, subject)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS suppressions (
        subject TEXT PRIMARY KEY,
        since INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS activity (
        subject TEXT PRIMARY KEY,
        last_at INTEGER NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS activity_last_at ON activity (last_at)",
)
# Run once, when `activity` is made in a file that already holds people.
FILL_ACTIVITY = (
    "INSERT INTO activity (subject, last_at) "
    "SELECT subject, max(occurred_at) FROM facts GROUP BY subject",
    "INSERT INTO activity (subject, last_at) "
    "SELECT subject, contact_as_of FROM people WHERE contact_as_of IS NOT NULL "
    "ON CONFLICT (subject) DO UPDATE SET last_at = max(last_at, excluded.last_at)",
)
NOTE_ACTIVITY = (
    "INSERT INTO activity (subject, last_at) VALUES (?, ?) ON CONFLICT (subject) "
    "DO UPDATE SET last_at = excluded.last_at WHERE excluded.last_at > activity.last_at"
)
# A subject's audience rows are found by primary key only with the purpose named: all of them.
_EVERY_PURPOSE = f"purpose IN ({','.join('?' * len(PURPOSES))})"


class SqliteConsentStore:
    def __init__(self, database: SqliteDatabase) -> None:
        self._database = database
        self.erasures = SqliteErasureRecords(database)

    async def prepare(self) -> None:
        new_activity = not await self._database.run(
            lambda connection: connection.execute("PRAGMA table_info(activity)").fetchall()
        )
        await self._database.create_schema(SCHEMA)
        if new_activity:

            def fill(connection: sqlite3.Connection) -> None:
                for statement in FILL_ACTIVITY:
                    connection.execute(statement)

            await self._database.run(fill)

    # --- history -------------------------------------------------------------------------------

    async def append_facts(self, subject: str, facts: list[AnyFact]) -> int:
        if not facts:
            return 0
        recorded_at = millis(datetime.now(UTC))
        rows = [
            (fact.fact_id, subject, millis(fact.occurred_at), recorded_at, fact.model_dump_json())
            for fact in facts
        ]
        latest = (subject, max(row[2] for row in rows))

        def append(connection: sqlite3.Connection) -> int:
            added = connection.executemany(
                "INSERT OR IGNORE INTO facts "
                "(fact_id, subject, occurred_at, recorded_at, fact) VALUES (?, ?, ?, ?, ?)",
                rows,
            ).rowcount
            connection.execute(NOTE_ACTIVITY, latest)
            return added

        return await self._database.run(append)

    async def facts_of(self, subject: str) -> list[AnyFact]:
        rows = await self._database.run(
            lambda connection: connection.execute(
                "SELECT fact, occurred_at, recorded_at FROM facts WHERE subject = ? "
                "ORDER BY occurred_at",
                (subject,),
            ).fetchall()
        )
        facts = [_fact(*row) for row in rows]
        # The index orders by time alone; ties are put in the order both adapters give.
        return sorted(facts, key=lambda fact: (*fact.position, fact.topic))

    async def count_facts(self, subject: str) -> int:
        return await sqlite_count(
            self._database, "SELECT count(*) FROM facts WHERE subject = ?", subject
        )

    # --- people --------------------------------------------------------------------------------

    async def save_state(self, subject: str, state: ConsentState, facts_seen: int) -> Person | None:
        values = (subject, facts_seen, _in_millis(state).model_dump_json())

        def save(connection: sqlite3.Connection) -> Person | None:
            changed = connection.execute(
                "INSERT INTO people (subject, facts_seen, state) VALUES (?, ?, ?) "
                "ON CONFLICT (subject) DO UPDATE SET "
                "facts_seen = excluded.facts_seen, state = excluded.state "
                "WHERE people.facts_seen IS NULL OR people.facts_seen < excluded.facts_seen",
                values,
            ).rowcount
            person = _read_person(connection, subject)
            if changed and person is not None:
                _place_in_audience(connection, person)
            return person

        return await self._database.run(save)

    async def save_contact(
        self, subject: str, contact: Contact, as_of: datetime, event_id: str
    ) -> bool:
        values = (subject, contact.model_dump_json(), millis(as_of), event_id)

        def save(connection: sqlite3.Connection) -> bool:
            changed = connection.execute(
                "INSERT INTO people (subject, contact, contact_as_of, contact_event_id) "
                "VALUES (?, ?, ?, ?) "
                "ON CONFLICT (subject) DO UPDATE SET contact = excluded.contact, "
                "contact_as_of = excluded.contact_as_of, "
                "contact_event_id = excluded.contact_event_id "
                "WHERE people.contact_as_of IS NULL "
                "OR people.contact_as_of < excluded.contact_as_of "
                "OR (people.contact_as_of = excluded.contact_as_of "
                "AND people.contact_event_id < excluded.contact_event_id)",
                values,
            ).rowcount
            connection.execute(NOTE_ACTIVITY, (subject, values[2]))
            if changed:
                person = _read_person(connection, subject)
                if person is not None:
                    _place_in_audience(connection, person)
            return changed > 0

        return await self._database.run(save)

    async def person(self, subject: str) -> Person | None:
        return await self._database.run(lambda connection: _read_person(connection, subject))

    async def mark_announced(self, subject: str, summary: ConsentSummary, version: int) -> None:
        values = (summary.model_dump_json(), subject, version)
        await self._database.run(
            lambda connection: connection.execute(
                "UPDATE people SET announced = ? WHERE subject = ? AND facts_seen = ?", values
            )
        )

    # --- the audience ----------------------------------------------------------------------------

    async def count_audience(self, purpose: Purpose) -> int:
        return await sqlite_count(
            self._database, "SELECT count(*) FROM audience WHERE purpose = ?", purpose
        )

    async def audience(
        self, purpose: Purpose, page_size: int
    ) -> AsyncIterator[list[dict[str, str]]]:
        after = ""  # before every subject hash
        while True:
            rows = await self._database.run(_AudiencePage(purpose, after, page_size))
            if rows:
                yield [orjson.loads(contact) for _, contact in rows]
            if len(rows) < page_size:
                return
            after = rows[-1][0]

    # --- erasure and suppressions --------------------------------------------------------------

    async def erase_person(self, subject: str) -> None:
        def erase(connection: sqlite3.Connection) -> None:
            connection.execute("DELETE FROM facts WHERE subject = ?", (subject,))
            connection.execute(
                f"DELETE FROM audience WHERE {_EVERY_PURPOSE} AND subject = ?",
                (*PURPOSES, subject),
            )
            connection.execute("DELETE FROM people WHERE subject = ?", (subject,))
            connection.execute("DELETE FROM activity WHERE subject = ?", (subject,))

        await self._database.run(erase)

    async def suppress(self, subject: str, since: datetime) -> None:
        values = (subject, millis(since))
        await self._database.run(
            lambda connection: connection.execute(
                "INSERT INTO suppressions (subject, since) VALUES (?, ?) "
                "ON CONFLICT (subject) DO UPDATE SET since = excluded.since",
                values,
            )
        )

    async def keep_suppressed_from(self, subject: str, since: datetime) -> bool:
        values = (subject, millis(since))
        return await self._database.run(
            lambda connection: (
                connection.execute(
                    "INSERT INTO suppressions (subject, since) VALUES (?, ?) "
                    "ON CONFLICT (subject) DO UPDATE SET since = excluded.since "
                    "WHERE excluded.since > suppressions.since",
                    values,
                ).rowcount
                > 0
            )
        )

    async def lift_suppression(self, subject: str, before: datetime) -> None:
        values = (subject, millis(before))
        await self._database.run(
            lambda connection: connection.execute(
                "DELETE FROM suppressions WHERE subject = ? AND since < ?", values
            )
        )

    async def suppressed_since(self, subject: str) -> datetime | None:
        row = await sqlite_row(
            self._database, "SELECT since FROM suppressions WHERE subject = ?", subject
        )
        return None if row is None else from_millis(row[0])

    # --- activity (the retention sweep) --------------------------------------------------------

    async def last_activity(self, subject: str) -> datetime | None:
        row = await sqlite_row(
            self._database, "SELECT last_at FROM activity WHERE subject = ?", subject
        )
        return None if row is None else from_millis(row[0])

    async def inactive_before(self, before: datetime) -> list[str]:
        moment = millis(before)
        rows = await self._database.run(
            lambda connection: connection.execute(
                "SELECT subject FROM activity WHERE last_at < ? ORDER BY last_at", (moment,)
            ).fetchall()
        )
        return [subject for (subject,) in rows]

    async def count_inactive_before(self, before: datetime) -> int:
        return await SqliteCutOff("FROM activity WHERE last_at < ?").count(self._database, before)


class _AudiencePage:
    """One page of an audience: the rows after subject hash `after`, with their subject hashes."""

    def __init__(self, purpose: Purpose, after: str, size: int) -> None:
        self._values = (purpose, after, size)

    def __call__(self, connection: sqlite3.Connection) -> list[Any]:
        # CROSS JOIN keeps `audience` the outer loop: its key range drives the page.
        return connection.execute(
            "SELECT audience.subject, people.contact FROM audience "
            "CROSS JOIN people ON people.subject = audience.subject "
            "WHERE audience.purpose = ? AND audience.subject > ? "
            "ORDER BY audience.subject LIMIT ?",
            self._values,
        ).fetchall()


def _fact(text: str, occurred_at: int, recorded_at: int) -> AnyFact:
    fields = orjson.loads(text)
    fields["occurred_at"] = from_millis(occurred_at)
    fields["recorded_at"] = from_millis(recorded_at)
    return FACT.validate_python(fields)


def _at_millis(moment: datetime) -> datetime:
    return from_millis(millis(moment))


def _in_millis(state: ConsentState) -> ConsentState:
    """The state with its moments as they are kept, in UTC to the millisecond, so that it reads
    back the same as from MongoDB."""
    return ConsentState(
        permissions={
            purpose: fact.model_copy(update={"occurred_at": _at_millis(fact.occurred_at)})
            for purpose, fact in state.permissions.items()
        },
        objection=None
        if state.objection is None
        else state.objection.model_copy(
            update={"occurred_at": _at_millis(state.objection.occurred_at)}
        ),
    )


def _read_person(connection: sqlite3.Connection, subject: str) -> Person | None:
    row = connection.execute(
        "SELECT facts_seen, state, announced, contact FROM people WHERE subject = ?", (subject,)
    ).fetchone()
    if row is None:
        return None
    facts_seen, state, announced, contact = row
    return Person(
        subject=subject,
        state=ConsentState() if state is None else ConsentState.model_validate_json(state),
        version=facts_seen or 0,
        announced=ConsentSummary()
        if announced is None
        else ConsentSummary.model_validate_json(announced),
        contact=None if contact is None else Contact.model_validate_json(contact),
    )


def _place_in_audience(connection: sqlite3.Connection, person: Person) -> None:
    """Make the person's audience rows say what their stored state and contact say."""
    wanted = set(person.state.may_contact if person.contact is not None else [])
    subject = person.subject
    current = {
        purpose
        for (purpose,) in connection.execute(
            f"SELECT purpose FROM audience WHERE {_EVERY_PURPOSE} AND subject = ?",
            (*PURPOSES, subject),
        )
    }
    connection.executemany(
        "DELETE FROM audience WHERE purpose = ? AND subject = ?",
        [(purpose, subject) for purpose in sorted(current - wanted)],
    )
    connection.executemany(
        "INSERT INTO audience (purpose, subject) VALUES (?, ?)",
        [(purpose, subject) for purpose in sorted(wanted - current)],
    )
