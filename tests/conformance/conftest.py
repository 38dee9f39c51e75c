"""The databases every store port's conformance suite runs against, one test per adapter.

- `sqlite`: the embedded default, a real SQLite file in the test's temporary directory. Every
  statement it runs is traced, and the test fails if `EXPLAIN QUERY PLAN` shows a full scan of a
  table (a query no index serves).
- `mongomock`: the MongoDB adapters over mongomock-ng (tests/doubles/mongomock_async.py), so that
  their code runs on every CI run, even where no MongoDB server is. Its queries' shapes are
  checked against the declared indexes (tests/doubles/query_shapes.py).
- `mongodb`: a real server, wherever `MONGODB_URL` is set (or testcontainers can start one); a
  fresh database per test, dropped after it. Run the server with `--setParameter notablescan=1`
  and a query no index serves fails there too.

A store test takes the `database` fixture and opens its port on it with the service's
`open_store`; it never looks at which adapter it got.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.database import Database, MongoDatabase
from shared.sqlite import SqliteDatabase
from tests.doubles.mongomock_async import MongomockClient
from tests.doubles.query_shapes import QueryLog, uncovered

ADAPTERS = ("sqlite", "mongomock", "mongodb")
# `\b`: without it the name backtracks (`audi` + `t USING INDEX`) and every index scan matches.
_FULL_SCAN = re.compile(r"^SCAN (\w+)\b(?! USING (COVERING )?INDEX)")
# Statements whose plan is not a query's: schema, transactions, pragmas.
_NOT_QUERIES = re.compile(
    r"^\s*(CREATE|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|PRAGMA|INSERT)", re.IGNORECASE
)


def full_scans(connection: sqlite3.Connection, statements: set[str]) -> list[str]:
    """The statements whose plan scans a whole table instead of searching an index."""
    problems = []
    for statement in sorted(statements):
        if _NOT_QUERIES.match(statement):
            continue
        plan = connection.execute(f"EXPLAIN QUERY PLAN {statement}").fetchall()
        scans = [row[3] for row in plan if _FULL_SCAN.match(row[3])]
        if scans:
            problems.append(f"{statement.strip()[:200]} -> {'; '.join(scans)}")
    return problems


@pytest.fixture(params=ADAPTERS)
async def database(
    request: pytest.FixtureRequest, tmp_path: Path, mongodb_url: str | None
) -> AsyncIterator[Database]:
    adapter = request.param
    if adapter == "sqlite":
        async for sqlite in _sqlite(tmp_path):
            yield sqlite
    elif adapter == "mongomock":
        async for mock in _mongomock(tmp_path):
            yield mock
    else:
        if mongodb_url is None:
            pytest.skip("no MongoDB server: set MONGODB_URL to run the suite against one")
        async for real in _mongodb(mongodb_url):
            yield real


async def _sqlite(tmp_path: Path) -> AsyncIterator[Database]:
    database = await SqliteDatabase.open(tmp_path / "store.sqlite3")
    statements: set[str] = set()
    database.trace(statements.add)
    try:
        yield database
    finally:
        database.trace(None)
        await database.close()
    # Parameters are expanded in traced statements; the plan is the same for the literals.
    with sqlite3.connect(tmp_path / "store.sqlite3") as connection:
        problems = full_scans(connection, statements)
    assert not problems, "queries no index serves:\n" + "\n".join(problems)


async def _mongomock(tmp_path: Path) -> AsyncIterator[Database]:
    log = tmp_path / "queries.jsonl"
    client = await MongomockClient.open(None, QueryLog(log))
    try:
        yield MongoDatabase(client["conformance"], client)  # type: ignore[arg-type]
    finally:
        await client.close()
    if log.exists():
        problems = uncovered([log])
        assert not problems, "queries no declared index serves:\n" + "\n".join(problems)


async def _mongodb(url: str) -> AsyncIterator[Database]:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict] = AsyncMongoClient(url, tz_aware=True, journal=True)
    name = f"conformance_{uuid.uuid4().hex[:12]}"
    try:
        yield MongoDatabase(client[name], client)
    finally:
        await client.drop_database(name)
        await client.close()
