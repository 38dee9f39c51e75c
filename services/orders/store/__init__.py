"""The orders service's store: the port the service layer uses, and its two adapters."""

from __future__ import annotations

from services.orders.store.mongo import MongoOrdersStore
from services.orders.store.port import OrdersStore
from services.orders.store.sqlite import SqliteOrdersStore
from shared.database import Database, adapter_for


async def open_store(database: Database) -> OrdersStore:
    """The adapter for the service's database, ready for use."""
    store: OrdersStore = adapter_for(database, SqliteOrdersStore, MongoOrdersStore)
    await store.prepare()
    return store


__all__ = ["OrdersStore", "open_store"]
