"""The embedded database: one SQLite file per service, driven by one writer thread.

Why a thread of our own rather than aiosqlite: aiosqlite also runs each connection in a thread,
but commits one statement (or transaction) at a time, so a durable write costs one fsync each.
Here every operation is a plain function of a `sqlite3.Connection`, queued for the one thread
that owns the connection. The thread takes everything queued since its last round, runs each
operation in a savepoint of one transaction, commits once (one fsync with `synchronous=FULL`),
and only then hands each caller its result. Messages that arrive while a commit is on disk
gather for the next round: concurrent handlers share commits (group commit), and no caller
hears "done" (and acks its message) before its write is on disk.

Because a single thread runs every operation to its end before the next, each operation is
atomic and isolated: a read-modify-write inside one function (a conditional upsert) cannot
interleave with another. An operation that raises is rolled back to its savepoint alone; the
others of its round commit. If the commit itself fails, every operation of the round fails.

The file: WAL journal, `synchronous=FULL`, `secure_delete=ON` (deleted rows are overwritten with
zeros, not left in free pages); `scrub()` checkpoints and truncates the WAL, so that after an
erasure the person's values survive neither in the database file nor in the WAL.
`memory://` keeps a private in-memory database (tests, benchmarks).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
Operation = Callable[[sqlite3.Connection], T]

log = logging.getLogger(__name__)

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA secure_delete=ON",
    "PRAGMA foreign_keys=ON",
    # The WAL is checkpointed by `scrub()` after an erasure and automatically past this size.
    "PRAGMA wal_autocheckpoint=1000",
)
# Most operations touch a handful of rows; more than this per round only delays the callers.
MAX_ROUND = 256


@dataclass
class _Job:
    operation: Operation[Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


_STOP = object()


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def millis(moment: datetime) -> int:
    """A moment as whole milliseconds since the epoch: what both stores keep (MongoDB's
    precision), so that a value compared with a stored one compares the same way. Exact
    integer arithmetic: a float timestamp can round 0.999 ms up."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def from_millis(value: int) -> datetime:
    """A stored millisecond count as a UTC datetime."""
    return _EPOCH + timedelta(milliseconds=value)


class SqliteDatabase:
    """One service's SQLite database, opened with `await SqliteDatabase.open(path_or_None)`."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._jobs: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._work, name=f"sqlite-writer:{path or 'memory'}", daemon=True
        )
        self._started = threading.Event()
        self._open_error: BaseException | None = None
        self._connection: sqlite3.Connection | None = None
        self._closed = False
        self.writable = True

    @classmethod
    async def open(cls, path: Path | None) -> SqliteDatabase:
        database = cls(path)
        database._thread.start()
        await asyncio.to_thread(database._started.wait)
        if database._open_error is not None:
            raise database._open_error
        return database

    # --- the caller's side ---------------------------------------------------------------------

    async def run(self, operation: Operation[T]) -> T:
        """Run `operation(connection)` in the writer thread; its result once it is committed."""
        if self._closed:
            raise sqlite3.ProgrammingError("the database is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_Job(operation, loop, future))
        return await future

    async def create_schema(self, statements: Iterable[str]) -> None:
        """Create tables and indexes (`CREATE ... IF NOT EXISTS`): safe to run at every start."""

        def create(connection: sqlite3.Connection) -> None:
            for statement in statements:
                connection.execute(statement)

        await self.run(create)

    async def scrub(self) -> None:
        """Copy the WAL into the database file and truncate it, so that values just deleted
        (with `secure_delete` zeroed in the file) are not left in the WAL's older frames."""
        if self.path is not None:
            await self.run(_Checkpoint())

    async def ping(self) -> bool:
        """Ready: the writer thread answers, and the last round that wrote could write."""
        try:
            await asyncio.wait_for(self.run(lambda c: c.execute("SELECT 1").fetchone()), 5)
        except Exception:  # readiness reports the failure
            return False
        return self.writable

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._jobs.put(_STOP)
        await asyncio.to_thread(self._thread.join)

    def trace(self, callback: Callable[[str], None] | None) -> None:
        """Tests: call `callback` with every SQL statement run from now on."""
        assert self._connection is not None
        self._connection.set_trace_callback(callback)

    # --- the writer thread ---------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        target = ":memory:" if self.path is None else str(self.path)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit off in the driver's sense: transactions are begun and ended here alone.
        connection = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        for pragma in PRAGMAS:
            connection.execute(pragma)
        mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
        if self.path is not None and mode != "wal":
            raise sqlite3.OperationalError(f"could not put {self.path} in WAL mode ({mode})")
        return connection

    def _work(self) -> None:
        try:
            self._connection = self._connect()
        except BaseException as error:
            self._open_error = error
            self._started.set()
            return
        self._started.set()
        connection = self._connection
        try:
            while True:
                first = self._jobs.get()
                if first is _STOP:
                    return
                round_ = [first]
                while len(round_) < MAX_ROUND:
                    try:
                        job = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if job is _STOP:
                        self._jobs.put(_STOP)
                        break
                    round_.append(job)
                self._run_round(connection, round_)  # type: ignore[arg-type]
        finally:
            connection.close()

    def _run_round(self, connection: sqlite3.Connection, jobs: list[_Job]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        checkpoint = False
        changes_before = connection.total_changes
        try:
            connection.execute("BEGIN IMMEDIATE")
            for job in jobs:
                if isinstance(job.operation, _Checkpoint):
                    checkpoint = True
                    outcomes.append((True, None))
                    continue
                connection.execute("SAVEPOINT operation")
                try:
                    result = job.operation(connection)
                except Exception as error:
                    if not connection.in_transaction:
                        # SQLite itself rolled the whole round back (a full disk, an I/O
                        # error): the operations before this one are lost too.
                        raise
                    connection.execute("ROLLBACK TO operation")
                    outcomes.append((False, error))
                else:
                    outcomes.append((True, result))
                connection.execute("RELEASE operation")
            connection.execute("COMMIT")
            if checkpoint:
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except Exception as error:
            log.error("an embedded database round failed: %s", type(error).__name__)
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            outcomes = [(False, error)] * len(jobs)
        # A store that cannot write (disk full, I/O error) reports not ready until a round
        # writes again: the service's messages then wait in their queues, never dropped.
        if any(not ok and _cannot_write(value) for ok, value in outcomes):
            self.writable = False
        elif connection.total_changes > changes_before:
            self.writable = True
        for job, (ok, value) in zip(jobs, outcomes, strict=True):
            job.loop.call_soon_threadsafe(_settle, job.future, ok, value)


def _cannot_write(error: BaseException) -> bool:
    """An error of the database itself, not of one operation's data (a constraint, a bug)."""
    return isinstance(error, sqlite3.OperationalError | sqlite3.DatabaseError) and not isinstance(
        error, sqlite3.IntegrityError | sqlite3.ProgrammingError | sqlite3.InterfaceError
    )


class _Checkpoint:
    """A job that asks for a WAL checkpoint once the round it is in has committed."""

    def __call__(self, connection: sqlite3.Connection) -> None:  # pragma: no cover
        raise AssertionError("run by the writer thread, never called")


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.cancelled():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
