"""The disclosure service's store: the port the service layer uses, and its two adapters."""

from __future__ import annotations

from services.disclosure.store.mongo import MongoDisclosureStore
from services.disclosure.store.port import (
    RELEASE_LEASE,
    DisclosureStore,
    LogEntry,
    Named,
    NamedEntry,
)
from services.disclosure.store.sqlite import SqliteDisclosureStore
from shared.database import Database, adapter_for


async def open_store(database: Database) -> DisclosureStore:
    """The adapter for the service's database, ready for use."""
    store: DisclosureStore = adapter_for(database, SqliteDisclosureStore, MongoDisclosureStore)
    await store.prepare()
    return store


__all__ = ["RELEASE_LEASE", "DisclosureStore", "LogEntry", "Named", "NamedEntry", "open_store"]
