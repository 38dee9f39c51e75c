"""The erasure service's store: the port the service layer uses, and its two adapters."""

from __future__ import annotations

from services.erasure.store.mongo import MongoErasureStore
from services.erasure.store.port import Attempt, ErasureStore
from services.erasure.store.sqlite import SqliteErasureStore
from shared.database import Database, adapter_for


async def open_store(database: Database) -> ErasureStore:
    """The adapter for the service's database, ready for use."""
    store: ErasureStore = adapter_for(database, SqliteErasureStore, MongoErasureStore)
    await store.prepare()
    return store


__all__ = ["Attempt", "ErasureStore", "open_store"]
