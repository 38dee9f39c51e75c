"""The orders service's store: the port the service layer uses, and its two adapters."""

from __future__ import annotations

from services.orders.store.port import OrdersStore
from shared.database import Database
from shared.sqlite import SqliteDatabase


async def open_store(database: Database) -> OrdersStore:
    """The adapter for the service's database, ready for use."""
    store: OrdersStore
    if isinstance(database, SqliteDatabase):
        from services.orders.store.sqlite import SqliteOrdersStore

        store = SqliteOrdersStore(database)
    else:
        from services.orders.store.mongo import MongoOrdersStore

        store = MongoOrdersStore(database.documents)
    await store.prepare()
    return store


__all__ = ["OrdersStore", "open_store"]
