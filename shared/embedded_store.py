"""The embedded store: a stand-in for MongoDB where no MongoDB server runs.

Production talks to a real MongoDB through PyMongo's `AsyncMongoClient`. Where the register runs
without Docker (`make dev`, tests) there is no server to talk to, so `EmbeddedClient` offers the
subset of PyMongo's async API the services use, with the same signatures, result objects and
exceptions, on top of `mongomock_ng`, a synchronous in-memory emulation of MongoDB. The adapter
is thin on purpose: mongomock_ng does the querying and updating; this module only makes it async
and, given a directory, durable. Service code never knows which one it has.

mongomock_ng is called directly on the event loop: its calls are fast and synchronous, so every
operation is atomic with respect to other coroutines. Only file writes and fsyncs go to a thread.

Durability (directory mode). Every write appends to `journal.jsonl` the *resulting* image of each
document it may have touched (`put` with the whole document, or `del` with its `_id`), not the
operation: re-running an operation could produce other `_id`s or timestamps. Index creations,
index drops and collection drops are journaled the same way. A record is one line,
`<crc32 of payload, 8 hex digits> <payload>\\n`, the payload being the record as BSON in
base64, so datetimes, ObjectIds, Decimal128 and bytes round-trip exactly, at C speed (records
an earlier version wrote as canonical extended JSON are still read). A write
returns only after its records are fsynced, because the caller acknowledges a RabbitMQ message
right after. Group commit keeps that affordable: writers append to a buffer and wait; one
flusher task writes and fsyncs the whole buffer in a worker thread, while new writes gather for
the next round. Reads never wait for disk; like MongoDB's default "local" read concern, a reader
may see a write whose writer is still waiting for its fsync.

Speed. mongomock_ng spends most of its time on generic care the register does not need, so
three of its helpers are swapped, at import, for equivalents that return the very same values
(tests/unit/test_embedded_store.py compares them): the walk that truncates datetimes to
milliseconds and the one that makes them timezone-aware go straight past plain scalars, and the
conversion of its codec options to PyMongo's, redone for every value it checks, is cached. Each
collection's reader-writer lock, which guards against threads, is replaced by a no-op: after
opening, only the event loop's thread touches the store. A `find_one` whose filter has an exact
`_id` (mongomock_ng's own, inside `find_one_and_*`, too) looks the document up instead of
running a query, and a cursor's results are read as one list (mongomock_ng's own iteration
re-slices the list for every document).

Opening (`await EmbeddedClient.open(directory)`, which runs the synchronous constructor in a
thread) loads `snapshot.jsonl`, replays the journal, writes a fresh snapshot atomically and starts
an empty journal, so start-up time stays bounded. Replaying images is idempotent, so a crash
between the new snapshot and the emptied journal is harmless. Incomplete or corrupt records at
the end of the journal are a write torn by a crash, never acknowledged: they are dropped with a
warning (the fresh journal replaces the file). A corrupt record followed by good ones is an
error naming the file and offset. A `fcntl.flock` on `LOCK` keeps a second client or process
from opening the same directory.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import logging
import os
import zlib
from collections.abc import (
    AsyncIterator,
    Callable,
    Coroutine,
    Hashable,
    Iterable,
    Iterator,
    Mapping,
)
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Self

import bson
import bson.errors
import mongomock_ng
import mongomock_ng.codec_options
import mongomock_ng.helpers
from bson import ObjectId, json_util
from bson.codec_options import CodecOptions
from bson.tz_util import utc
from mongomock_ng.filtering import filter_applies
from mongomock_ng.helpers import hashdict
from pymongo import InsertOne, ReturnDocument, UpdateMany, UpdateOne
from pymongo.errors import BulkWriteError, InvalidOperation, WriteConcernError
from pymongo.operations import IndexModel
from pymongo.results import (
    BulkWriteResult,
    DeleteResult,
    InsertManyResult,
    InsertOneResult,
    UpdateResult,
)

from shared.query_shapes import QueryLog

Document = dict[str, Any]
Record = dict[str, Any]

_JSON = json_util.CANONICAL_JSON_OPTIONS.with_options(tz_aware=True, tzinfo=utc)
_BSON: CodecOptions[Document] = CodecOptions(tz_aware=True, tzinfo=utc)
_SNAPSHOT, _JOURNAL, _LOCK = "snapshot.jsonl", "journal.jsonl", "LOCK"

log = logging.getLogger(__name__)


class EmbeddedStoreError(RuntimeError):
    """The store directory cannot be opened: locked by another client, or corrupt."""


# --- speed (see the module docstring) ---------------------------------------------------------

_SCALARS = frozenset({str, int, float, bool, type(None), bytes, ObjectId, bson.Int64})
_generic_patch_datetimes = mongomock_ng.helpers.patch_datetime_awareness_in_document
_generic_make_aware = mongomock_ng.helpers.make_datetime_timezone_aware_in_document
_generic_to_pymongo = mongomock_ng.codec_options.CodecOptions.to_pymongo


def _past_scalars(generic: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`generic`, one of mongomock_ng's document walks, with a fast path for plain dicts, lists
    and scalars (a scalar inside is passed over without a call); anything else goes to
    `generic`, which recurses through its helper's name, i.e. back here."""

    def walk(value: Any) -> Any:
        kind = type(value)
        if kind is dict:
            return {
                key: item if type(item) in _SCALARS else walk(item) for key, item in value.items()
            }
        if kind is list:
            return [item if type(item) in _SCALARS else walk(item) for item in value]
        if kind in _SCALARS:
            return value
        return generic(value)

    return walk


# Truncates datetimes to milliseconds and drops their timezone (what is stored).
_patch_datetimes = _past_scalars(_generic_patch_datetimes)
# Makes stored datetimes timezone-aware (what a tz_aware client reads).
_make_aware = _past_scalars(_generic_make_aware)


_converted_options: dict[int, tuple[Any, Any]] = {}


def _to_pymongo(options: Any) -> Any:
    """The conversion, remembered per options object (each collection keeps its own; holding
    the object keeps its id from being reused)."""
    entry = _converted_options.get(id(options))
    if entry is None or entry[0] is not options:
        if len(_converted_options) > 64:  # never seen: mongomock_ng keeps its options objects
            _converted_options.clear()
        entry = _converted_options[id(options)] = (options, _generic_to_pymongo(options))
    return entry[1]


mongomock_ng.helpers.patch_datetime_awareness_in_document = _patch_datetimes
mongomock_ng.helpers.make_datetime_timezone_aware_in_document = _make_aware
mongomock_ng.codec_options.CodecOptions.to_pymongo = _to_pymongo


class _OneThread:
    """Stands in for a collection's reader-writer lock: only the event loop's thread reads or
    writes the store once it is open, so there is nothing to lock against."""

    _held = contextlib.nullcontext()

    def reader(self) -> contextlib.nullcontext[None]:
        return self._held

    def writer(self) -> contextlib.nullcontext[None]:
        return self._held


_ONE_THREAD = _OneThread()
_EXACT_IDS = frozenset({str, int, ObjectId})
_UNANSWERED = object()


def _key(value: Any) -> str:
    """A hashable identity for an `_id` (which may be a dict) in the replay state."""
    return json_util.dumps(value, json_options=_JSON)


def _frame(record: Record) -> bytes:
    """One journal line: CRC32, then the record as base64 BSON (exact types, C-fast)."""
    payload = base64.b64encode(bson.encode(record))
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


def _unframe(line: bytes) -> Record | None:
    """The record in one line, or None if the line is torn or corrupt."""
    checksum, _, payload = line.partition(b" ")
    try:
        if len(checksum) == 8 and int(checksum, 16) == zlib.crc32(payload):
            if payload.startswith(b"{"):  # written by an earlier version, as extended JSON
                return json_util.loads(payload, json_options=_JSON)
            return bson.decode(base64.b64decode(payload, validate=True), codec_options=_BSON)
    except (ValueError, bson.errors.BSONError):
        pass
    return None


def _read_records(path: Path, *, may_be_torn: bool) -> list[Record]:
    data = path.read_bytes()
    *lines, tail = data.split(b"\n")  # a non-empty tail is a line whose write never finished
    records: list[Record] = []
    offset, bad_offset = 0, None
    for line in [*lines, tail] if tail else lines:
        record = _unframe(line)
        if record is None:
            bad_offset = offset if bad_offset is None else bad_offset
        elif bad_offset is not None:
            raise EmbeddedStoreError(f"{path}: corrupt record at byte offset {bad_offset}")
        else:
            records.append(record)
        offset += len(line) + 1
    if bad_offset is not None:
        if not may_be_torn:
            raise EmbeddedStoreError(f"{path}: corrupt record at byte offset {bad_offset}")
        log.warning("%s: dropping torn record at byte offset %d", path, bad_offset)
    return records


@dataclass
class _CollectionImage:
    docs: dict[str, Document] = field(default_factory=dict)  # by _key(_id), in insertion order
    indexes: dict[str, Document] = field(default_factory=dict)


def _replay(records: Iterable[Record], state: dict[tuple[str, str], _CollectionImage]) -> None:
    for record in records:
        namespace = (record["db"], record["coll"])
        if record["op"] == "drop":
            state.pop(namespace, None)
            continue
        image = state.setdefault(namespace, _CollectionImage())
        match record["op"]:
            case "put":
                image.docs[_key(record["doc"]["_id"])] = record["doc"]
            case "del":
                image.docs.pop(_key(record["_id"]), None)
            case "index":
                image.indexes[record["name"]] = record["spec"]
            case "drop_index":
                image.indexes.pop(record["name"], None)
            case op:
                raise EmbeddedStoreError(f"unknown journal operation {op!r}")


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _no_session(kwargs: dict[str, Any]) -> dict[str, Any]:
    # Sessions are accepted for signature parity; mongomock_ng would choke on a PyMongo one.
    kwargs.pop("session", None)
    return kwargs


def _check_encodable(update: Any) -> None:
    # PyMongo encodes an update to BSON before sending it, so a value BSON cannot hold fails
    # before anything is written; mongomock_ng skips that check for update operators.
    bson.encode({"update": update})


def _upserted(result: UpdateResult) -> list[Any]:
    return [] if result.upserted_id is None else [result.upserted_id]


class _EqualityIndex:
    """Where each value of a collection's indexed leading fields occurs, by document key.

    mongomock_ng answers every query by scanning every document; with this the store reads
    only the documents a query's equality on `_id` or on the leading field of a declared
    index can match, and lets mongomock_ng's own matching decide among those. Built on first
    use from the documents present, then kept up to date by every write the adapter makes.
    """

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.fields: dict[str, dict[Any, set[Any]]] = {}
        self._values: dict[Any, dict[str, list[Any]]] = {}
        self._order: dict[Any, int] = {}
        self._sequence = 0

    def build(self, field: str, documents: Iterable[Document]) -> None:
        self.fields[field] = {}
        for document in documents:
            self.update(_store_key(document["_id"]), document, only=field)

    def update(self, key: Any, document: Document | None, only: str | None = None) -> None:
        if document is None:
            for field, values in self._values.pop(key, {}).items():
                for value in values:
                    self.fields[field].get(value, set()).discard(key)
            self._order.pop(key, None)
            return
        if key not in self._order:
            self._sequence += 1
            self._order[key] = self._sequence
        entries = self._values.setdefault(key, {})
        for field in [only] if only else list(self.fields):
            postings = self.fields[field]
            for value in entries.get(field, []):
                postings.get(value, set()).discard(key)
            entries[field] = _hashable_values(_dotted(document, field))
            for value in entries[field]:
                postings.setdefault(value, set()).add(key)

    def in_natural_order(self, keys: Iterable[Any]) -> list[Any]:
        return sorted(keys, key=lambda key: self._order.get(key, 0))


def _store_key(document_id: Any) -> Any:
    return hashdict(document_id) if isinstance(document_id, dict) else document_id


def _dotted(document: Mapping[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _hashable_values(value: Any) -> list[Any]:
    """The values an equality on this field can match (each element of an array too)."""
    values = value if isinstance(value, list) else [value]
    return [v for v in values if isinstance(v, Hashable) and not isinstance(v, dict)]


def _equality_values(condition: Any) -> list[Any] | None:
    """The values a filter condition requires by equality, or None when it is not one."""
    if isinstance(condition, Mapping):
        if set(condition) == {"$eq"}:
            condition = condition["$eq"]
        elif set(condition) == {"$in"} and isinstance(condition["$in"], list):
            return list(condition["$in"])
        elif any(str(key).startswith("$") for key in condition):
            return None
    if isinstance(condition, list | dict):
        return None
    return [condition]


class _Journal:
    """Append-only record file with group commit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("wb")  # starts empty: the snapshot already holds everything
        os.fsync(self._file.fileno())
        _fsync_directory(path.parent)
        self._pending: list[bytes] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.failure: OSError | None = None
        self.flushes = 0

    async def append(self, lines: list[bytes]) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._pending += lines
        self._waiters.append(waiter)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await waiter

    async def _flush(self) -> None:
        while self._pending:
            data, waiters = b"".join(self._pending), self._waiters
            self._pending, self._waiters = [], []
            try:
                await asyncio.to_thread(self._write, data)
            except OSError as exc:
                # After a failed fsync the file's state is unknown: refuse all later writes.
                self.failure = exc
                error = WriteConcernError(f"journal {self.path} failed, write not durable: {exc}")
                for waiter in waiters + self._waiters:
                    if not waiter.done():
                        waiter.set_exception(error)
                return
            self.flushes += 1
            for waiter in waiters:
                if not waiter.done():  # a cancelled writer's records are durable all the same
                    waiter.set_result(None)

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self._file.flush()
        os.fsync(self._file.fileno())

    async def close(self) -> None:
        if self._flusher is not None:
            await self._flusher
        self._file.close()


class EmbeddedClient:
    """Stands in for `AsyncMongoClient`; `directory=None` keeps everything in memory only.

    The constructor opens the store synchronously (lock, replay, snapshot); from async code use
    `await EmbeddedClient.open(directory)`, which runs it in a thread.
    """

    def __init__(self, directory: Path | None, query_log: QueryLog | None = None) -> None:
        self.query_log = query_log
        self._equality_indexes: dict[tuple[str, str], _EqualityIndex] = {}
        self._sync = mongomock_ng.MongoClient(tz_aware=True)
        self._journal: _Journal | None = None
        self._lock_fd: int | None = None
        self._closed = False
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            self._lock_fd = self._lock(directory)
            try:
                self._recover(directory)
            except BaseException:
                os.close(self._lock_fd)
                raise

    @classmethod
    async def open(
        cls, directory: Path | None, query_log: QueryLog | None = None
    ) -> EmbeddedClient:
        return await asyncio.to_thread(cls, directory, query_log)

    @staticmethod
    def _lock(directory: Path) -> int:
        path = directory / _LOCK
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise EmbeddedStoreError(
                f"embedded store {directory} is already open in another client or process"
                f" (lock {path} is held)"
            ) from None
        return fd

    def _recover(self, directory: Path) -> None:
        snapshot, journal = directory / _SNAPSHOT, directory / _JOURNAL
        state: dict[tuple[str, str], _CollectionImage] = {}
        if snapshot.exists():
            _replay(_read_records(snapshot, may_be_torn=False), state)
        if journal.exists():
            _replay(_read_records(journal, may_be_torn=True), state)
        for (db_name, coll_name), image in state.items():
            collection = self._sync[db_name][coll_name]
            if image.docs:
                collection.insert_many(list(image.docs.values()))
            # Indexes after the documents: one uniqueness check per index instead of per insert.
            for name, spec in image.indexes.items():
                options = {k: v for k, v in spec.items() if k not in ("key", "v")}
                collection.create_index([tuple(k) for k in spec["key"]], name=name, **options)
        self._write_snapshot(directory)
        self._journal = _Journal(journal)

    def _write_snapshot(self, directory: Path) -> None:
        temporary = directory / f"{_SNAPSHOT}.tmp"
        with temporary.open("wb") as file:
            for db_name in self._sync.list_database_names():
                for coll_name in self._sync[db_name].list_collection_names():
                    collection = EmbeddedCollection(self[db_name], coll_name)
                    file.writelines(_frame(r) for r in collection._images_of_all())
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(directory / _SNAPSHOT)
        _fsync_directory(directory)

    @property
    def journal_flushes(self) -> int:
        """How many journal writes were fsynced so far (one per group commit)."""
        return 0 if self._journal is None else self._journal.flushes

    def _check_writable(self) -> None:
        if self._closed:
            raise InvalidOperation("Cannot use EmbeddedClient after close")
        if self._journal is not None and self._journal.failure is not None:
            raise WriteConcernError(f"journal {self._journal.path} failed earlier; reopen")

    async def _commit(self, records: list[Record]) -> None:
        """Return once `records` are durable; at once in memory mode."""
        if self._journal is not None and records:
            await self._journal.append([_frame(r) for r in records])

    def __getitem__(self, name: str) -> EmbeddedDatabase:
        return EmbeddedDatabase(self, name)

    def get_database(self, name: str) -> EmbeddedDatabase:
        return self[name]

    async def close(self) -> None:
        """Wait for pending journal writes, then release the directory. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._journal is not None:
            await self._journal.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class EmbeddedDatabase:
    def __init__(self, client: EmbeddedClient, name: str) -> None:
        self.client = client
        self.name = name
        self._sync = client._sync[name]

    def __getitem__(self, name: str) -> EmbeddedCollection:
        return EmbeddedCollection(self, name)

    def get_collection(self, name: str) -> EmbeddedCollection:
        return self[name]

    async def command(self, command: str | Mapping[str, Any], **kwargs: Any) -> Document:
        """Whatever mongomock_ng answers: `ping` (either form) gives `{"ok": 1.0}`."""
        command = command if isinstance(command, str) else dict(command)  # it updates the dict
        return self._sync.command(command, **_no_session(kwargs))

    async def list_collection_names(self, **kwargs: Any) -> list[str]:
        return self._sync.list_collection_names(**_no_session(kwargs))

    async def drop_collection(
        self, name_or_collection: str | EmbeddedCollection, **kwargs: Any
    ) -> None:
        if isinstance(name_or_collection, EmbeddedCollection):
            name_or_collection = name_or_collection.name
        await self[name_or_collection].drop(**kwargs)


def _results(cursor: mongomock_ng.collection.Cursor) -> list[Document]:
    """Every document a mongomock_ng cursor yields, computed once and read as a list.

    Its own iteration re-slices the whole result list for every document it returns, which
    makes reading n documents O(n^2): minutes for a snapshot of 100,000 documents.
    """
    return cursor._compute_results(with_limit_and_skip=True)


class EmbeddedCommandCursor:
    """What AsyncCommandCursor offers (from `aggregate`), over results mongomock_ng produced."""

    def __init__(self, results: Iterator[Document]) -> None:
        self._results = results

    def batch_size(self, batch_size: int) -> Self:
        return self  # everything is in memory already

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Document:
        return await self.next()

    async def next(self) -> Document:
        try:
            return next(self._results)
        except StopIteration:
            raise StopAsyncIteration from None

    async def to_list(self, length: int | None = None) -> list[Document]:
        if length is not None and length < 1:
            raise ValueError("to_list() length must be greater than 0")
        return list(islice(self._results, length))

    async def close(self) -> None:
        self._results = iter(())

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class EmbeddedCursor(EmbeddedCommandCursor):
    """What AsyncCursor offers (from `find`): options chain until the first document is read."""

    def __init__(
        self,
        cursor: mongomock_ng.collection.Cursor,
        on_start: Callable[[Any], None],
        sort: Any = None,
    ) -> None:
        super().__init__(cursor)
        self._query = cursor
        self._started = False
        self._on_start = on_start
        self._sort = sort

    def _chain(self) -> None:
        if self._started:
            raise InvalidOperation("cannot set options after executing query")

    def _start(self) -> None:
        if not self._started:
            self._started = True
            self._on_start(self._sort)
            self._results = iter(_results(self._query))

    def sort(self, key_or_list: Any, direction: int | str | None = None) -> Self:
        self._chain()
        self._query.sort(key_or_list, direction)
        self._sort = key_or_list if direction is None else [(key_or_list, direction)]
        return self

    def skip(self, skip: int) -> Self:
        self._chain()
        self._query.skip(skip)
        return self

    def limit(self, limit: int) -> Self:
        self._chain()
        self._query.limit(limit)
        return self

    def batch_size(self, batch_size: int) -> Self:
        self._chain()
        return self

    async def next(self) -> Document:
        self._start()
        return await super().next()

    async def to_list(self, length: int | None = None) -> list[Document]:
        self._start()
        return await super().to_list(length)

    async def close(self) -> None:
        self._started = True  # a closed cursor stays empty
        await super().close()


def _read(name: str, filter_at: int | None = 0) -> Callable[..., Coroutine[Any, Any, Any]]:
    """A collection method that only reads: mongomock_ng's, made awaitable.

    `filter_at` is the position of its filter argument, for the query log.
    """

    async def read(self: EmbeddedCollection, *args: Any, **kwargs: Any) -> Any:
        if filter_at is not None:
            query = args[filter_at] if len(args) > filter_at else kwargs.get("filter")
            self._observe(name, query, kwargs.get("sort"))
        return getattr(self._sync, name)(*args, **_no_session(kwargs))

    read.__name__ = read.__qualname__ = name
    return read


class EmbeddedCollection:
    """What AsyncCollection offers, for the subset the services use."""

    def __init__(self, database: EmbeddedDatabase, name: str) -> None:
        self.database = database
        self.name = name
        self._client = database.client
        self._sync = database._sync[name]
        self._sync._store._rwlock = _ONE_THREAD
        self._sync.find_one = self._sync_find_one
        self._namespace = {"db": database.name, "coll": name}
        self._index = database.client._equality_indexes.setdefault(
            (database.name, name), _EqualityIndex()
        )
        self._scan_all = self._sync._iter_documents
        # Every mongomock_ng query (find, update, delete, count) selects documents here.
        self._sync._iter_documents = self._matching_documents

    _find_one = _read("find_one")

    async def find_one(self, filter: Any = None, *args: Any, **kwargs: Any) -> Document | None:
        """mongomock_ng's find_one; with an exact `_id` in the filter (most reads), a dictionary
        lookup returning what mongomock_ng's cursor would (tests/unit/test_embedded_store.py)."""
        if not args and not kwargs and (found := self._by_exact_id(filter)) is not _UNANSWERED:
            self._observe("find_one", filter)
            return found
        return await self._find_one(filter, *args, **kwargs)

    def _sync_find_one(self, filter: Any = None, *args: Any, **kwargs: Any) -> Document | None:
        """mongomock_ng's own find_one, which its find_one_and_* call twice, with the same lookup."""
        plain = all(a is None for a in args) and all(v is None for v in kwargs.values())
        if plain and (found := self._by_exact_id(filter)) is not _UNANSWERED:
            return found
        return type(self._sync).find_one(self._sync, filter, *args, **kwargs)

    def _by_exact_id(self, filter: Any) -> Any:
        """The one document a filter with an exact `_id` can match, None, or _UNANSWERED."""
        if type(filter) is not dict or type(document_id := filter.get("_id")) not in _EXACT_IDS:
            return _UNANSWERED
        stored = self._sync._store._documents.get(document_id)
        if stored is None or (
            len(filter) > 1 and not filter_applies(_patch_datetimes(filter), stored)
        ):
            return None
        return _make_aware(stored)

    count_documents = _read("count_documents")
    estimated_document_count = _read("estimated_document_count", filter_at=None)
    distinct = _read("distinct", filter_at=1)
    index_information = _read("index_information", filter_at=None)

    def _observe(self, operation: str, query: Any, sort: Any = None) -> None:
        """Record the query's shape where a query log is kept (tests: index coverage)."""
        log = self._client.query_log
        if log is None:
            return
        indexes = [
            [key for key, _ in info["key"]] for info in self._sync.index_information().values()
        ]
        log.record(f"{self.database.name}.{self.name}", operation, query, sort, indexes)

    def find(self, *args: Any, **kwargs: Any) -> EmbeddedCursor:
        query = args[0] if args else kwargs.get("filter")
        return EmbeddedCursor(
            self._sync.find(*args, **_no_session(kwargs)),
            on_start=lambda sort: self._observe("find", query, sort),
            sort=kwargs.get("sort"),
        )

    async def aggregate(self, pipeline: list[Document], **kwargs: Any) -> EmbeddedCommandCursor:
        first = pipeline[0] if pipeline else {}
        following = pipeline[1] if len(pipeline) > 1 else {}
        self._observe("aggregate", first.get("$match"), following.get("$sort"))
        if self._client._journal is not None and any(
            "$out" in s or "$merge" in s for s in pipeline
        ):
            raise NotImplementedError("$out and $merge would write around the journal")
        return EmbeddedCommandCursor(iter(self._sync.aggregate(pipeline, **_no_session(kwargs))))

    async def insert_one(self, document: Document, **kwargs: Any) -> InsertOneResult:
        async with self._journaled(inserted=[document]):
            return self._sync.insert_one(document, **_no_session(kwargs))

    async def insert_many(self, documents: Iterable[Document], **kwargs: Any) -> InsertManyResult:
        documents = list(documents)
        async with self._journaled(inserted=documents):
            return self._sync.insert_many(documents, **_no_session(kwargs))

    async def update_one(
        self, filter: Document, update: Any, upsert: bool = False, **kwargs: Any
    ) -> UpdateResult:
        _check_encodable(update)
        async with self._journaled(filter, sort=kwargs.get("sort")) as touched:
            result = self._sync.update_one(filter, update, upsert, **_no_session(kwargs))
            touched += _upserted(result)
        return result

    async def update_many(
        self, filter: Document, update: Any, upsert: bool = False, **kwargs: Any
    ) -> UpdateResult:
        _check_encodable(update)
        async with self._journaled(filter, many=True) as touched:
            result = self._sync.update_many(filter, update, upsert, **_no_session(kwargs))
            touched += _upserted(result)
        return result

    async def replace_one(
        self, filter: Document, replacement: Document, upsert: bool = False, **kwargs: Any
    ) -> UpdateResult:
        async with self._journaled(filter, sort=kwargs.get("sort")) as touched:
            result = self._sync.replace_one(filter, replacement, upsert, **_no_session(kwargs))
            touched += _upserted(result)
        return result

    async def delete_one(self, filter: Document, **kwargs: Any) -> DeleteResult:
        async with self._journaled(filter):
            return self._sync.delete_one(filter, **_no_session(kwargs))

    async def delete_many(self, filter: Document, **kwargs: Any) -> DeleteResult:
        async with self._journaled(filter, many=True):
            return self._sync.delete_many(filter, **_no_session(kwargs))

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
        async with self._journaled(filter, sort=sort, upsert=upsert):
            return self._sync.find_one_and_update(
                filter, update, projection, sort, upsert, return_document, **_no_session(kwargs)
            )

    async def find_one_and_replace(
        self,
        filter: Document,
        replacement: Document,
        projection: Any = None,
        sort: Any = None,
        upsert: bool = False,
        return_document: bool = ReturnDocument.BEFORE,
        **kwargs: Any,
    ) -> Document | None:
        async with self._journaled(filter, sort=sort, upsert=upsert):
            return self._sync.find_one_and_replace(
                filter,
                replacement,
                projection,
                sort,
                upsert,
                return_document,
                **_no_session(kwargs),
            )

    async def find_one_and_delete(
        self, filter: Document, projection: Any = None, sort: Any = None, **kwargs: Any
    ) -> Document | None:
        async with self._journaled(filter, sort=sort):
            return self._sync.find_one_and_delete(filter, projection, sort, **_no_session(kwargs))

    async def bulk_write(
        self, requests: Iterable[Any], ordered: bool = True, **kwargs: Any
    ) -> BulkWriteResult:
        requests = list(requests)
        # The operations keep their arguments in private attributes; PyMongo has no accessors.
        inserted = [r._doc for r in requests if isinstance(r, InsertOne)]
        filters = [r._filter for r in requests if not isinstance(r, InsertOne)]
        for request in requests:
            if isinstance(request, UpdateOne | UpdateMany):
                _check_encodable(request._doc)
        matching = {"$or": filters} if filters else None
        async with self._journaled(matching, many=True, inserted=inserted) as touched:
            try:
                result = self._sync.bulk_write(requests, ordered, **_no_session(kwargs))
            except BulkWriteError as error:
                touched += [upserted["_id"] for upserted in error.details["upserted"]]
                raise
            touched += result.upserted_ids.values()
            return result

    async def create_index(self, keys: Any, **kwargs: Any) -> str:
        self._client._check_writable()
        name = self._sync.create_index(keys, **_no_session(kwargs))
        await self._client._commit(self._index_records([name]))
        return name

    async def create_indexes(self, indexes: list[IndexModel], **kwargs: Any) -> list[str]:
        self._client._check_writable()
        names = self._sync.create_indexes(indexes, **_no_session(kwargs))
        await self._client._commit(self._index_records(names))
        return names

    async def drop_index(self, index_or_name: Any, **kwargs: Any) -> None:
        self._client._check_writable()
        before = self._sync.index_information()
        self._sync.drop_index(index_or_name, **_no_session(kwargs))
        dropped = before.keys() - self._sync.index_information().keys()
        await self._client._commit(
            [{"op": "drop_index", **self._namespace, "name": name} for name in dropped]
        )

    async def drop(self, **kwargs: Any) -> None:
        self._client._check_writable()
        self._sync.drop(**_no_session(kwargs))
        self._index.clear()
        await self._client._commit([{"op": "drop", **self._namespace}])

    def _index_records(self, names: Iterable[str]) -> list[Record]:
        information = self._sync.index_information()
        return [
            {"op": "index", **self._namespace, "name": name, "spec": information[name]}
            for name in names
        ]

    def _matching_documents(self, filter: Any) -> Iterator[Document]:
        keys = self._candidate_keys(filter) if isinstance(filter, Mapping) else None
        if keys is None:
            return self._scan_all(filter)
        store = self._sync._store
        candidates = [store[key] for key in self._index.in_natural_order(keys) if key in store]
        return (document for document in candidates if filter_applies(filter, document))

    def _candidate_keys(self, filter: Mapping[str, Any]) -> set[Any] | None:
        """Keys of every document the filter could match, or None when only a scan can tell."""
        if "_id" in filter and (ids := _equality_values(filter["_id"])) is not None:
            return {_store_key(value) for value in ids}
        leading = {info["key"][0][0] for info in self._sync._store.indexes.values()}
        narrowest: set[Any] | None = None
        # Every equality on a leading field narrows; the fewest candidates win, as a planner
        # would pick the selective index (`subjects`) over one every document matches (`status`).
        for name, condition in filter.items():
            if name in leading and (values := _equality_values(condition)) is not None:
                postings = self._postings(name)
                keys = set().union(
                    *(postings.get(v, set()) for v in values if isinstance(v, Hashable))
                )
                if narrowest is None or len(keys) < len(narrowest):
                    narrowest = keys
        if narrowest is not None:
            return narrowest
        if isinstance(branches := filter.get("$or"), list) and branches:
            per_branch = [
                self._candidate_keys(b) if isinstance(b, Mapping) else None for b in branches
            ]
            if all(keys is not None for keys in per_branch):
                return set().union(*per_branch)  # type: ignore[arg-type]
        return None

    def _postings(self, field: str) -> dict[Any, set[Any]]:
        if field not in self._index.fields:
            self._index.build(field, self._sync._store.documents)
        return self._index.fields[field]

    def _reindex(self, ids: Iterable[Any]) -> None:
        store = self._sync._store
        for key in dict.fromkeys(_store_key(document_id) for document_id in ids):
            # mongomock_ng's store has no get().
            self._index.update(key, store[key] if key in store else None)  # noqa: SIM401

    def _images_of_all(self) -> Iterator[Record]:
        for document in _results(self._sync.find()):
            yield {"op": "put", **self._namespace, "doc": document}
        yield from self._index_records(n for n in self._sync.index_information() if n != "_id_")

    def _images(self, ids: list[Any]) -> list[Record]:
        """The current image of each document: `put` if it exists, `del` if it does not."""
        # Looked up in mongomock_ng's own store, keyed by _id: a find by _id scans the whole
        # collection (mongomock_ng has no indexes), which would make every insert O(n).
        store = self._sync._store
        records: list[Record] = []
        for key in dict.fromkeys(hashdict(i) if isinstance(i, dict) else i for i in ids):
            if key in store:
                records.append({"op": "put", **self._namespace, "doc": store[key]})
            else:
                records.append({"op": "del", **self._namespace, "_id": key})
        return records

    def _candidates(self, filter: Document, *, many: bool, sort: Any) -> list[Any]:
        """The _ids of the documents a write with this filter may change."""
        document_id = filter.get("_id") if isinstance(filter, Mapping) else None
        if type(document_id) in _EXACT_IDS:
            # An exact _id can only match itself, or be the one an upsert inserts: no scan, and
            # no looking for the upserted document either (a `del` for a miss is harmless).
            return [document_id]
        matches = self._sync.find(filter, {"_id": 1}, sort=sort, limit=0 if many else 1)
        return [d["_id"] for d in _results(matches)]

    def _last_id(self) -> list[Any]:
        last = self._sync.find({}, {"_id": 1}, sort=[("$natural", -1)], limit=1)
        return [d["_id"] for d in _results(last)]

    @contextlib.asynccontextmanager
    async def _journaled(
        self,
        matching: Document | None = None,
        *,
        many: bool = False,
        sort: Any = None,
        upsert: bool = False,
        inserted: list[Any] | None = None,
    ) -> AsyncIterator[list[Any]]:
        """Around a write: journal every document it may touch, and wait until that is durable;
        keep the equality index up to date with them.

        Yields the `_id`s of the documents `matching` selects (all, or the first in `sort`
        order, which is the one a single-document write picks), to which the write may add.
        Runs also when the write raises: an ordered insert_many or bulk_write may have done part
        of its work before its error. Journaling an untouched document is harmless.
        """
        self._client._check_writable()
        if matching is not None:
            self._observe("write", matching, sort)
        touched: list[Any] = []
        if self._client._journal is None and not self._index.fields:
            yield touched
            return
        if matching is not None:
            touched = self._candidates(matching, many=many, sort=sort)
        # find_one_and_* do not report the _id of a document their upsert inserts. An upsert
        # that matched nothing inserts at most one; mongomock_ng keeps documents in insertion
        # order, so it is the new last one.
        catch_upsert = upsert and not touched
        last_before = self._last_id() if catch_upsert else []
        try:
            yield touched
        finally:
            touched += [d["_id"] for d in inserted or [] if isinstance(d, Mapping) and "_id" in d]
            if catch_upsert and (last := self._last_id()) != last_before:
                touched += last
            self._reindex(touched)
            if touched and self._client._journal is not None:
                await self._client._commit(self._images(touched))
