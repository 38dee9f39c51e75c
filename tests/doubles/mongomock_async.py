"""A test double of PyMongo's async API, in memory, on mongomock-ng.

Test code only: no service uses it (where no MongoDB server runs, the services keep their data
in SQLite, shared/sqlite.py). The conformance suite (tests/conformance/) runs each store port's
MongoDB adapter against a real server where one is configured, and against this double
everywhere else, so that the adapters' code runs on every test run, on machines with neither
Docker nor MongoDB.

`MongomockClient` offers the part of `AsyncMongoClient`, `AsyncDatabase`, `AsyncCollection` and
`AsyncCursor` the MongoDB adapters call, with PyMongo's signatures, result objects and exceptions
(`DuplicateKeyError`, `BulkWriteError`). mongomock-ng does the querying and updating; this module
only makes it awaitable. Like a `tz_aware` PyMongo client, it stores datetimes truncated to
milliseconds and returns them timezone-aware (UTC). mongomock-ng runs synchronously on the event
loop, so each call is atomic with respect to other coroutines; a real server gives no such
promise (what the adapters do about that is tested against the real server, and on its own).

Given a `QueryLog`, it records the shape of every query with the collection's indexes at that
moment; the conformance fixture fails a test whose queries no declared index serves
(tests/doubles/query_shapes.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from typing import Any, Self

import bson
import mongomock_ng
from pymongo import ReturnDocument
from pymongo.errors import InvalidOperation
from pymongo.operations import IndexModel
from pymongo.results import DeleteResult, InsertManyResult, InsertOneResult, UpdateResult

from tests.doubles.query_shapes import QueryLog

Document = dict[str, Any]


def _no_session(kwargs: dict[str, Any]) -> dict[str, Any]:
    # Sessions are accepted for signature parity; mongomock-ng would choke on a PyMongo one.
    kwargs.pop("session", None)
    return kwargs


def _check_encodable(update: Any) -> None:
    # PyMongo encodes an update to BSON before sending it, so a value BSON cannot hold fails
    # before anything is written; mongomock-ng skips that check for update operators.
    bson.encode({"update": update})


class _ClosedOnExit(ABC):
    """`async with` closes it, as pymongo's client and cursor are."""

    @abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class MongomockClient(_ClosedOnExit):
    """Stands in for `AsyncMongoClient`: everything in memory, gone at `close()`."""

    def __init__(self, query_log: QueryLog | None = None) -> None:
        self.query_log = query_log
        self._sync = mongomock_ng.MongoClient(tz_aware=True)
        self._closed = False

    @classmethod
    async def open(
        cls, directory: None = None, query_log: QueryLog | None = None
    ) -> MongomockClient:
        if directory is not None:
            raise TypeError("the mongomock test double keeps nothing on disk: pass None")
        return cls(query_log)

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidOperation("Cannot use MongomockClient after close")

    def __getitem__(self, name: str) -> MongomockDatabase:
        return MongomockDatabase(self, name)

    def get_database(self, name: str) -> MongomockDatabase:
        return self[name]

    async def close(self) -> None:
        self._closed = True


class MongomockDatabase:
    def __init__(self, client: MongomockClient, name: str) -> None:
        self.client = client
        self.name = name
        self._sync = client._sync[name]

    def __getitem__(self, name: str) -> MongomockCollection:
        return MongomockCollection(self, name)

    def get_collection(self, name: str) -> MongomockCollection:
        return self[name]

    async def command(self, command: str | Mapping[str, Any], **kwargs: Any) -> Document:
        """Whatever mongomock-ng answers: `ping` (either form) gives `{"ok": 1.0}`."""
        self.client._check_open()
        command = command if isinstance(command, str) else dict(command)  # it updates the dict
        return self._sync.command(command, **_no_session(kwargs))


class MongomockCursor(_ClosedOnExit):
    """What AsyncCursor offers (from `find`): options chain until the first document is read."""

    def __init__(self, collection: MongomockCollection, query: Any, cursor: Any, sort: Any) -> None:
        self._collection = collection
        self._query = query
        self._cursor = cursor
        self._sort = sort
        self._results: Iterator[Document] | None = None

    def _chain(self) -> None:
        if self._results is not None:
            raise InvalidOperation("cannot set options after executing query")

    def _started(self) -> Iterator[Document]:
        if self._results is None:
            self._collection._observe("find", self._query, self._sort)
            self._results = iter(list(self._cursor))
        return self._results

    def sort(self, key_or_list: Any, direction: int | str | None = None) -> Self:
        self._chain()
        self._cursor.sort(key_or_list, direction)
        self._sort = key_or_list if direction is None else [(key_or_list, direction)]
        return self

    def limit(self, limit: int) -> Self:
        self._chain()
        self._cursor.limit(limit)
        return self

    def batch_size(self, batch_size: int) -> Self:
        self._chain()
        return self  # everything is in memory already

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Document:
        return await self.next()

    async def next(self) -> Document:
        try:
            return next(self._started())
        except StopIteration:
            raise StopAsyncIteration from None

    async def to_list(self, length: int | None = None) -> list[Document]:
        if length is not None and length < 1:
            raise ValueError("to_list() length must be greater than 0")
        return list(islice(self._started(), length))

    async def close(self) -> None:
        self._results = iter(())  # a closed cursor stays empty


class MongomockCollection:
    """What AsyncCollection offers, for the calls the MongoDB adapters make."""

    def __init__(self, database: MongomockDatabase, name: str) -> None:
        self.database = database
        self.name = name
        self._client = database.client
        self._sync = database._sync[name]

    def _observe(self, operation: str, query: Any, sort: Any = None) -> None:
        """Refuse a closed client; record the query's shape where a query log is kept."""
        self._client._check_open()
        log = self._client.query_log
        if log is None:
            return
        indexes = [
            [key for key, _ in info["key"]] for info in self._sync.index_information().values()
        ]
        log.record(f"{self.database.name}.{self.name}", operation, query, sort, indexes)

    # --- reads ----------------------------------------------------------------------------------

    def find(self, filter: Any = None, *args: Any, **kwargs: Any) -> MongomockCursor:
        cursor = self._sync.find(filter, *args, **_no_session(kwargs))
        return MongomockCursor(self, filter, cursor, kwargs.get("sort"))

    async def find_one(self, filter: Any = None, *args: Any, **kwargs: Any) -> Document | None:
        self._observe("find_one", filter, kwargs.get("sort"))
        return self._sync.find_one(filter, *args, **_no_session(kwargs))

    async def count_documents(self, filter: Document, **kwargs: Any) -> int:
        self._observe("count_documents", filter)
        return self._sync.count_documents(filter, **_no_session(kwargs))

    async def index_information(self, **kwargs: Any) -> dict[str, Any]:
        self._client._check_open()
        return self._sync.index_information(**_no_session(kwargs))

    # --- writes ---------------------------------------------------------------------------------

    async def insert_one(self, document: Document, **kwargs: Any) -> InsertOneResult:
        self._client._check_open()
        return self._sync.insert_one(document, **_no_session(kwargs))

    async def insert_many(self, documents: Iterable[Document], **kwargs: Any) -> InsertManyResult:
        self._client._check_open()
        return self._sync.insert_many(list(documents), **_no_session(kwargs))

    async def update_one(
        self, filter: Document, update: Any, upsert: bool = False, **kwargs: Any
    ) -> UpdateResult:
        _check_encodable(update)
        self._observe("write", filter, kwargs.get("sort"))
        return self._sync.update_one(filter, update, upsert, **_no_session(kwargs))

    async def update_many(
        self, filter: Document, update: Any, upsert: bool = False, **kwargs: Any
    ) -> UpdateResult:
        _check_encodable(update)
        self._observe("write", filter)
        return self._sync.update_many(filter, update, upsert, **_no_session(kwargs))

    async def find_one_and_update(
        self,
        filter: Document,
        update: Any,
        projection: Any = None,
        sort: Any = None,
        upsert: bool = False,
        return_document: bool = ReturnDocument.BEFORE,
        **kwargs: Any,
    ) -> Document | None:
        _check_encodable(update)
        self._observe("write", filter, sort)
        return self._sync.find_one_and_update(
            filter, update, projection, sort, upsert, return_document, **_no_session(kwargs)
        )

    async def delete_one(self, filter: Document, **kwargs: Any) -> DeleteResult:
        self._observe("write", filter)
        return self._sync.delete_one(filter, **_no_session(kwargs))

    async def delete_many(self, filter: Document, **kwargs: Any) -> DeleteResult:
        self._observe("write", filter)
        return self._sync.delete_many(filter, **_no_session(kwargs))

    # --- indexes and the collection itself --------------------------------------------------------

    async def create_index(self, keys: Any, **kwargs: Any) -> str:
        self._client._check_open()
        return self._sync.create_index(keys, **_no_session(kwargs))

    async def create_indexes(self, indexes: list[IndexModel], **kwargs: Any) -> list[str]:
        self._client._check_open()
        return self._sync.create_indexes(indexes, **_no_session(kwargs))

    async def drop(self, **kwargs: Any) -> None:
        self._client._check_open()
        self._sync.drop(**_no_session(kwargs))
