"""The erasure service's store: the port the service layer uses, and its two adapters."""

from __future__ import annotations

from services.erasure.store.port import ErasureStore
from shared.database import Database
from shared.sqlite import SqliteDatabase


async def open_store(database: Database) -> ErasureStore:
    """The adapter for the service's database, ready for use."""
    store: ErasureStore
    if isinstance(database, SqliteDatabase):
        from services.erasure.store.sqlite import SqliteErasureStore

        store = SqliteErasureStore(database)
    else:
        from services.erasure.store.mongo import MongoErasureStore

        store = MongoErasureStore(database.documents)
    await store.prepare()
    return store


__all__ = ["ErasureStore", "open_store"]
