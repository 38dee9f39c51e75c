"""The consent service's store: the port the service layer uses, and its two adapters."""

from __future__ import annotations

from services.consent.store.mongo import MongoConsentStore
from services.consent.store.port import ConsentStore
from services.consent.store.sqlite import SqliteConsentStore
from shared.database import Database, adapter_for


async def open_store(database: Database) -> ConsentStore:
    """The adapter for the service's database, ready for use."""
    store: ConsentStore = adapter_for(database, SqliteConsentStore, MongoConsentStore)
    await store.prepare()
    return store


__all__ = ["ConsentStore", "open_store"]
