"""Connects a service to its own MongoDB database: a real server, or the embedded store.

`MONGODB_URL` names a real MongoDB (production, docker compose). Unset, the service keeps its
data in the embedded store under `DATA_DIR/<service>/`; `memory://` keeps it only in memory
(unit tests, benchmarks). Store modules see one type either way: PyMongo's `AsyncDatabase`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.settings import ServiceSettings

MEMORY_URL = "memory://"
Database = AsyncDatabase[dict[str, Any]]

log = logging.getLogger(__name__)


class _Closable(Protocol):
    async def close(self) -> None: ...


@dataclass
class DatabaseConnection:
    database: Database
    description: str
    _client: _Closable

    async def ping(self) -> bool:
        try:
            await self.database.command("ping")
        except Exception:  # readiness reports the failure; the reason is in the driver's log
            return False
        return True

    async def close(self) -> None:
        await self._client.close()


def describe_store(settings: ServiceSettings) -> str:
    """Where the data lives, fit for a log line (a MongoDB password is masked)."""
    url = settings.mongodb_url
    if url is None:
        return f"embedded store on disk under {Path(settings.data_dir) / settings.service_name}"
    if url == MEMORY_URL:
        return "embedded store in memory: data is lost when the service stops"
    if "@" in url:
        scheme, rest = url.split("://", 1)
        url = f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return f"MongoDB at {url}"


async def connect_database(settings: ServiceSettings) -> DatabaseConnection:
    url = settings.mongodb_url
    description = describe_store(settings)
    if url is not None and url != MEMORY_URL:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            url, tz_aware=True, appname=settings.service_name
        )
        return DatabaseConnection(client[settings.database_name], description, client)

    # The stand-in and its query log load only where they are used.
    from shared.embedded_store import EmbeddedClient
    from shared.query_shapes import QueryLog

    directory = None if url == MEMORY_URL else Path(settings.data_dir) / settings.service_name
    query_log = settings.embedded_store_query_log
    embedded = await EmbeddedClient.open(
        directory, QueryLog(Path(query_log)) if query_log else None
    )
    if directory is None:
        log.warning("data is kept in memory only and is lost when the service stops")
    database = cast("Database", embedded[settings.database_name])
    return DatabaseConnection(database, description, embedded)


# Conditional upserts: apply an update to the document if it meets a condition, or create the
# document if it is missing. When it exists but fails the condition, the upsert's insert
# collides with its `_id`: that DuplicateKeyError means "what is stored wins".


async def conditional_upsert(
    collection: AsyncCollection[dict[str, Any]],
    document_id: Any,
    condition: dict[str, Any],
    update: dict[str, Any],
) -> bool:
    """The conditional upsert; True when it changed or created the document."""
    try:
        result = await collection.update_one({"_id": document_id, **condition}, update, upsert=True)
    except DuplicateKeyError:
        return False
    return result.modified_count > 0 or result.upserted_id is not None


async def conditional_upsert_returning(
    collection: AsyncCollection[dict[str, Any]],
    document_id: Any,
    condition: dict[str, Any],
    update: dict[str, Any],
) -> dict[str, Any] | None:
    """The conditional upsert; the document as stored afterwards, whichever write won (None:
    deleted meanwhile)."""
    try:
        return await collection.find_one_and_update(
            {"_id": document_id, **condition},
            update,
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
    except DuplicateKeyError:
        return await collection.find_one({"_id": document_id})
