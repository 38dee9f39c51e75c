"""The erasure service's MongoDB database; the only code that touches it.

Collection `requests`: one document per erasure or access request and its progress.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel

from shared.database import Database

OPEN_STATUSES = ("received", "in_progress", "stuck")


class ErasureStore:
    def __init__(self, database: Database) -> None:
        self._requests = database["requests"]

    async def create_indexes(self) -> None:
        await self._requests.create_indexes(
            [
                IndexModel([("status", ASCENDING), ("received_at", ASCENDING)]),
                IndexModel([("received_at", ASCENDING)]),
            ]
        )

    async def requests(self, open_only: bool) -> list[dict[str, Any]]:
        query = {"status": {"$in": list(OPEN_STATUSES)}} if open_only else {}
        cursor = self._requests.find(query).sort("received_at", ASCENDING)
        return await cursor.to_list(None)
