"""The embedded database (shared/sqlite.py): group commit, atomic operations, durability, the
file's settings and scrubbing; and how a service is connected to it (shared/database.py)."""

from __future__ import annotations

import asyncio
import math
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import ClassVar

import pytest

from shared import sqlite as sqlite_module
from shared.database import StoreError, connect_database
from shared.settings import ServiceSettings
from shared.sqlite import SqliteDatabase

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    database = await SqliteDatabase.open(tmp_path / "test.sqlite3")
    await database.create_schema(SCHEMA)
    try:
        yield database
    finally:
        await database.close()


def insert(item_id: int, value: str = "x") -> Callable[[sqlite3.Connection], None]:
    def operation(connection: sqlite3.Connection) -> None:
        connection.execute("INSERT INTO items (id, value) VALUES (?, ?)", (item_id, value))

    return operation


async def item_ids(database: SqliteDatabase) -> list[int]:
    rows = await database.run(lambda c: c.execute("SELECT id FROM items ORDER BY id").fetchall())
    return [row[0] for row in rows]


class Gate:
    """An operation that holds the writer thread until released: whatever is queued meanwhile
    runs in the writer's next round. Released from the event loop once the other operations
    are queued, so that rounds are decided by order, never by timing."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.released = threading.Event()

    def __call__(self, connection: sqlite3.Connection) -> None:
        self.entered.set()
        # A safety net against a hung test, not a timing assumption: the release comes at once.
        assert self.released.wait(timeout=30), "the gate was never released"

    async def hold(self, database: SqliteDatabase) -> asyncio.Task[None]:
        task = asyncio.create_task(database.run(self))
        await asyncio.to_thread(self.entered.wait)
        return task

    def release_after_queued(self) -> None:
        """Open the gate once every task created so far has taken its first step (queued its
        operation): a `call_soon` callback runs after the callbacks scheduled before it."""
        asyncio.get_running_loop().call_soon(self.released.set)


# --- rounds: group commit and savepoints --------------------------------------------------------


async def test_concurrent_writes_share_commits(database: SqliteDatabase) -> None:
    commits: list[str] = []
    database.trace(lambda statement: commits.append(statement) if statement == "COMMIT" else None)
    gate = Gate()
    held = await gate.hold(database)
    writes = [asyncio.create_task(database.run(insert(i))) for i in range(200)]
    gate.release_after_queued()
    await asyncio.gather(held, *writes)
    database.trace(None)

    assert await item_ids(database) == list(range(200))
    # The gate's round, then the 200 writes in as few rounds as a round may hold.
    assert len(commits) <= 1 + math.ceil(200 / sqlite_module.MAX_ROUND)
    assert len(commits) < 200 / 50


async def test_a_failing_operation_is_rolled_back_alone(database: SqliteDatabase) -> None:
    class Refused(Exception):
        pass

    def insert_then_fail(connection: sqlite3.Connection) -> None:
        connection.execute("INSERT INTO items (id, value) VALUES (2, 'half-done')")
        raise Refused

    commits: list[str] = []
    database.trace(lambda statement: commits.append(statement) if statement == "COMMIT" else None)
    gate = Gate()
    held = await gate.hold(database)
    first = asyncio.create_task(database.run(insert(1)))
    failing = asyncio.create_task(database.run(insert_then_fail))
    third = asyncio.create_task(database.run(insert(3)))
    gate.release_after_queued()
    await asyncio.gather(held, first, third)
    with pytest.raises(Refused):
        await failing
    database.trace(None)

    assert len(commits) == 2, "the three operations ran in one round after the gate's"
    assert await item_ids(database) == [1, 3]


async def test_a_read_modify_write_is_atomic(database: SqliteDatabase) -> None:
    await database.run(lambda c: c.execute("INSERT INTO counter (id, n) VALUES (1, 0)"))

    def increment(connection: sqlite3.Connection) -> int:
        (n,) = connection.execute("SELECT n FROM counter WHERE id = 1").fetchone()
        connection.execute("UPDATE counter SET n = ? WHERE id = 1", (n + 1,))
        return n + 1

    results = await asyncio.gather(*(database.run(increment) for _ in range(100)))
    assert sorted(results) == list(range(1, 101))
    final = await database.run(lambda c: c.execute("SELECT n FROM counter").fetchone()[0])
    assert final == 100


# --- the file -------------------------------------------------------------------------------------


async def test_data_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "kept.sqlite3"
    database = await SqliteDatabase.open(path)
    await database.create_schema(SCHEMA)
    await database.run(insert(7, "kept"))
    await database.close()

    reopened = await SqliteDatabase.open(path)
    try:
        await reopened.create_schema(SCHEMA)  # as every start does
        rows = await reopened.run(lambda c: c.execute("SELECT id, value FROM items").fetchall())
        assert rows == [(7, "kept")]
    finally:
        await reopened.close()


async def test_the_file_is_in_wal_mode_with_full_sync_and_secure_delete(
    database: SqliteDatabase,
) -> None:
    def pragmas(connection: sqlite3.Connection) -> tuple[object, ...]:
        return tuple(
            connection.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("journal_mode", "synchronous", "secure_delete")
        )

    assert await database.run(pragmas) == ("wal", 2, 1)
    assert database.path is not None
    header = database.path.read_bytes()[:20]
    assert header.startswith(b"SQLite format 3\x00")
    assert header[18:20] == b"\x02\x02", "the file's header says WAL"


async def test_scrub_leaves_a_deleted_value_in_neither_the_file_nor_the_wal(
    database: SqliteDatabase,
) -> None:
    await database.create_schema(["CREATE INDEX IF NOT EXISTS items_value ON items (value)"])
    erased_value = "erase-me-4f1c9a7e@example.fi"
    assert database.path is not None
    file, wal = database.path, database.path.with_name(database.path.name + "-wal")

    def raw(path: Path) -> bytes:
        return path.read_bytes() if path.exists() else b""

    await database.run(insert(1, erased_value))
    await database.run(insert(2, "someone else"))
    assert erased_value.encode() in raw(wal), "written to the WAL first"
    await database.scrub()
    assert erased_value.encode() in raw(file), "and by the checkpoint into the file"
    assert raw(wal) == b""

    await database.run(lambda c: c.execute("DELETE FROM items WHERE id = 1"))
    assert erased_value.encode() in raw(file), "until the next checkpoint the file still has it"
    await database.scrub()

    assert erased_value.encode() not in raw(file)
    assert erased_value.encode() not in raw(wal)
    assert b"someone else" in raw(file)
    assert await item_ids(database) == [2]


async def test_ping_and_close(tmp_path: Path) -> None:
    database = await SqliteDatabase.open(tmp_path / "ping.sqlite3")
    assert await database.ping() is True
    await database.close()
    await database.close()  # idempotent
    with pytest.raises(sqlite3.ProgrammingError):
        await database.run(lambda c: c.execute("SELECT 1").fetchone())
    assert await database.ping() is False


async def test_a_memory_database_keeps_nothing_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    database = await SqliteDatabase.open(None)
    try:
        await database.create_schema(SCHEMA)
        await database.run(insert(1))
        await database.scrub()
        assert await item_ids(database) == [1]
    finally:
        await database.close()
    assert await asyncio.to_thread(lambda: [*tmp_path.iterdir()]) == []


@pytest.mark.parametrize("where", ["parent is a file", "path is a directory"])
async def test_a_path_that_cannot_hold_the_database_fails_at_open(
    tmp_path: Path, where: str
) -> None:
    blocker = tmp_path / "blocker"
    if where == "parent is a file":
        blocker.write_text("not a directory")
        path = blocker / "service.sqlite3"
    else:
        blocker.mkdir()
        path = blocker
    with pytest.raises((OSError, sqlite3.Error)):
        await SqliteDatabase.open(path)


# --- connect_database and the old embedded store ------------------------------------------------


class OrdersSettings(ServiceSettings):
    service_name: ClassVar[str] = "orders"


def settings_in(data_dir: Path) -> OrdersSettings:
    return OrdersSettings(mongodb_url=None, data_dir=str(data_dir))


@pytest.mark.parametrize("old_file", ["journal.jsonl", "snapshot.jsonl"])
async def test_the_old_embedded_stores_data_is_refused_with_what_to_do(
    tmp_path: Path, old_file: str
) -> None:
    old = tmp_path / "orders"
    old.mkdir()
    (old / old_file).write_text("")
    with pytest.raises(StoreError) as refused:
        await connect_database(settings_in(tmp_path))
    message = str(refused.value)
    assert str(old) in message
    assert f"rm -r {old}" in message
    assert not (tmp_path / "orders.sqlite3").exists()


async def test_without_old_data_a_service_gets_its_own_sqlite_file(tmp_path: Path) -> None:
    (tmp_path / "consent").mkdir()  # another service's old directory is not this one's
    (tmp_path / "consent" / "journal.jsonl").write_text("")
    database = await connect_database(settings_in(tmp_path))
    try:
        assert isinstance(database, SqliteDatabase)
        assert database.path == tmp_path / "orders.sqlite3"
        assert database.path.exists()
        assert await database.ping()
    finally:
        await database.close()


async def test_memory_url_gives_a_database_in_memory(tmp_path: Path) -> None:
    database = await connect_database(
        OrdersSettings(mongodb_url="memory://", data_dir=str(tmp_path))
    )
    try:
        assert isinstance(database, SqliteDatabase) and database.path is None
    finally:
        await database.close()
    assert await asyncio.to_thread(lambda: [*tmp_path.iterdir()]) == []


async def test_a_database_that_cannot_write_is_not_ready_until_it_writes_again(
    tmp_path: Path,
) -> None:
    database = await SqliteDatabase.open(tmp_path / "full.sqlite3")
    try:
        await database.create_schema(["CREATE TABLE IF NOT EXISTS t (v TEXT)"])
        pages = await database.run(lambda c: c.execute("PRAGMA page_count").fetchone()[0])
        # The file may not grow: as a full disk would refuse it.
        await database.run(lambda c: c.execute(f"PRAGMA max_page_count = {pages}").fetchone())
        with pytest.raises(sqlite3.OperationalError, match="full"):
            await database.run(lambda c: c.execute("INSERT INTO t VALUES (?)", ("x" * 100_000,)))
        assert await database.ping() is False, "a full store is not ready"
        assert await database.ping() is False, "a read alone does not make it ready"

        await database.run(lambda c: c.execute("PRAGMA max_page_count = 100000").fetchone())
        await database.run(lambda c: c.execute("INSERT INTO t VALUES (?)", ("x" * 100_000,)))
        assert await database.ping() is True
    finally:
        await database.close()
