"""The erasure store on MongoDB: the service's own database in production.

Collection `requests`: one document per erasure or access request, `_id` the request id, the
rest the `ErasureRequest` (a report under its participant's name in `reports`); a field of the
request that is None is absent (`next_attempt_at` is there only while the request is open).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.erasure.domain import CLOSED_STATUSES, OPEN_STATUSES, ErasureRequest
from services.erasure.store.port import Attempt
from shared.contracts.erasure import ErasureReported
from shared.database import MongoDocuments


class MongoErasureStore:
    def __init__(self, documents: MongoDocuments) -> None:
        self._requests = documents["requests"]

    async def prepare(self) -> None:
        await self._requests.create_indexes(
            [
                IndexModel([("status", ASCENDING), ("received_at", ASCENDING)]),
                IndexModel([("received_at", ASCENDING)]),
                IndexModel([("subject", ASCENDING), ("received_at", ASCENDING)]),
                IndexModel([("next_attempt_at", ASCENDING)], sparse=True),
            ]
        )

    async def add(self, request: ErasureRequest) -> ErasureRequest | None:
        while True:
            try:
                await self._requests.insert_one(_document(request))
            except DuplicateKeyError:
                existing = await self.request(request.request_id)
                if existing is not None:
                    return existing
                continue  # deleted by the retention sweep meanwhile: the id is free again
            return None

    async def request(self, request_id: str) -> ErasureRequest | None:
        document = await self._requests.find_one({"_id": request_id})
        return None if document is None else _request(document)

    async def requests(self, open_only: bool) -> list[ErasureRequest]:
        query = {"status": {"$in": list(OPEN_STATUSES)}} if open_only else {}
        return await self._oldest_first(query)

    async def requests_of(self, subject: str) -> list[ErasureRequest]:
        return await self._oldest_first({"subject": subject})

    async def due(self, now: datetime) -> list[ErasureRequest]:
        cursor = self._requests.find({"next_attempt_at": {"$lte": now}})
        requests = [_request(document) async for document in cursor]
        return sorted(requests, key=lambda r: (r.next_attempt_at, r.request_id))

    async def _oldest_first(self, query: dict[str, Any]) -> list[ErasureRequest]:
        cursor = self._requests.find(query).sort("received_at", ASCENDING)
        # The index orders by time alone: ties by request id, as on SQLite.
        requests = [_request(document) async for document in cursor]
        return sorted(requests, key=lambda r: (r.received_at, r.request_id))

    async def cleared_dead_letters(self, request_id: str, removed: int, now: datetime) -> None:
        await self._requests.update_one(
            {"_id": request_id},
            {"$inc": {"own_dead_letters": removed}, "$min": {"started_at": now}},
        )

    async def started(self, request_id: str, next_attempt_at: datetime) -> None:
        await self._requests.update_one(
            {"_id": request_id, "status": "received"},
            {
                "$set": {
                    "status": "in_progress",
                    "attempts": 1,
                    "next_attempt_at": next_attempt_at,
                }
            },
        )

    async def attempted(self, request_id: str, attempt: Attempt) -> None:
        await self._requests.update_one(
            {"_id": request_id, "status": {"$in": ["in_progress", "stuck"]}},
            {"$set": attempt.changes()},
        )

    async def add_report(self, report: ErasureReported) -> ErasureRequest | None:
        # One document update: of two reports at once, each sees the other's changes.
        document = await self._requests.find_one_and_update(
            {"_id": report.request_id, "pending": report.service},
            {
                "$pull": {"pending": report.service},
                "$set": {f"reports.{report.service}": report.model_dump()},
            },
            return_document=ReturnDocument.AFTER,
        )
        return None if document is None else _request(document)

    async def complete(self, request_id: str, now: datetime) -> ErasureRequest | None:
        document = await self._requests.find_one_and_update(
            {"_id": request_id, "pending": {"$size": 0}, "status": {"$in": list(OPEN_STATUSES)}},
            {
                "$set": {"status": "completed", "completed_at": now},
                "$unset": {"next_attempt_at": "", "stuck_since": ""},
            },
            return_document=ReturnDocument.AFTER,
        )
        return None if document is None else _request(document)

    def _done_before(self, before: datetime) -> dict[str, Any]:
        return {"status": {"$in": list(CLOSED_STATUSES)}, "received_at": {"$lt": before}}

    async def count_done_before(self, before: datetime) -> int:
        return await self._requests.count_documents(self._done_before(before))

    async def delete_done_before(self, before: datetime) -> int:
        return (await self._requests.delete_many(self._done_before(before))).deleted_count


def _document(request: ErasureRequest) -> dict[str, Any]:
    document = request.model_dump(exclude_none=True, exclude={"request_id", "reports"})
    document["reports"] = {name: report.model_dump() for name, report in request.reports.items()}
    return {"_id": request.request_id, **document}


def _request(document: dict[str, Any]) -> ErasureRequest:
    fields = {key: value for key, value in document.items() if key != "_id"}
    return ErasureRequest.model_validate({**fields, "request_id": document["_id"]})
