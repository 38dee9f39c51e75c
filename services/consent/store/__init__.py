"""The consent service's store: the port the service layer uses, and its two adapters."""

from __future__ import annotations

from services.consent.store.port import ConsentStore
from shared.database import Database
from shared.sqlite import SqliteDatabase


async def open_store(database: Database) -> ConsentStore:
    """The adapter for the service's database, ready for use."""
    store: ConsentStore
    if isinstance(database, SqliteDatabase):
        from services.consent.store.sqlite import SqliteConsentStore

        store = SqliteConsentStore(database)
    else:
        from services.consent.store.mongo import MongoConsentStore

        store = MongoConsentStore(database.documents)
    await store.prepare()
    return store


__all__ = ["ConsentStore", "open_store"]
