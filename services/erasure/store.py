"""The erasure service's MongoDB database; the only code that touches it.

Collection `requests`: one document per erasure or access request, `_id` the request id, the
person only as their keyed hash (never the email), with the progress of an erasure: the
participants still to report (`pending`), their reports, the attempts and when the next is due
(`next_attempt_at`, only while the request is open).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.erasure.domain import OPEN_STATUSES, ErasureRequest
from shared.contracts.erasure import ErasureReported
from shared.database import Database


class ErasureStore:
    def __init__(self, database: Database) -> None:
        self._requests = database["requests"]

    async def create_indexes(self) -> None:
        await self._requests.create_indexes(
            [
                IndexModel([("status", ASCENDING), ("received_at", ASCENDING)]),
                IndexModel([("received_at", ASCENDING)]),
                IndexModel([("subject", ASCENDING), ("received_at", ASCENDING)]),
                IndexModel([("next_attempt_at", ASCENDING)], sparse=True),
            ]
        )

    async def add(self, request: ErasureRequest) -> ErasureRequest:
        """Store a new request; if its id is taken, the stored one is returned instead."""
        try:
            await self._requests.insert_one(_document(request))
        except DuplicateKeyError:
            existing = await self.request(request.request_id)
            assert existing is not None
            return existing
        return request

    async def request(self, request_id: str) -> ErasureRequest | None:
        document = await self._requests.find_one({"_id": request_id})
        return None if document is None else _request(document)

    async def requests(self, open_only: bool) -> list[ErasureRequest]:
        query = {"status": {"$in": list(OPEN_STATUSES)}} if open_only else {}
        cursor = self._requests.find(query).sort("received_at", ASCENDING)
        return [_request(document) async for document in cursor]

    async def requests_of(self, subject: str) -> list[ErasureRequest]:
        cursor = self._requests.find({"subject": subject}).sort("received_at", ASCENDING)
        return [_request(document) async for document in cursor]

    async def due(self, now: datetime) -> list[ErasureRequest]:
        cursor = self._requests.find({"next_attempt_at": {"$lte": now}})
        return [_request(document) async for document in cursor]

    async def cleared_dead_letters(self, request_id: str, removed: int, now: datetime) -> None:
        """The erasure service's own part is done; the request starts now. Recorded before the
        participants are asked, whose reports may complete the request at once; added up, as
        a repeated start after a crash finds only what is left."""
        await self._requests.update_one(
            {"_id": request_id},
            {"$inc": {"own_dead_letters": removed}, "$min": {"started_at": now}},
        )

    async def started(self, request_id: str, next_attempt_at: datetime) -> None:
        """The participants have been asked for the first time."""
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

    async def attempted(
        self,
        request_id: str,
        attempts: int,
        next_attempt_at: datetime,
        stuck_since: datetime | None,
    ) -> None:
        """The silent participants have been asked again; maybe the request is stuck now."""
        changes: dict[str, Any] = {"attempts": attempts, "next_attempt_at": next_attempt_at}
        if stuck_since is not None:
            changes |= {"status": "stuck", "stuck_since": stuck_since}
        await self._requests.update_one(
            {"_id": request_id, "status": {"$in": ["in_progress", "stuck"]}}, {"$set": changes}
        )

    async def add_report(self, report: ErasureReported) -> ErasureRequest | None:
        """Take a participant's first report of a request; None when the request does not wait
        for it (a repeat, or an unknown request)."""
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
        """Mark the request completed once no participant is missing; None if it is not."""
        document = await self._requests.find_one_and_update(
            {"_id": request_id, "pending": {"$size": 0}, "status": {"$in": list(OPEN_STATUSES)}},
            {
                "$set": {"status": "completed", "completed_at": now},
                "$unset": {"next_attempt_at": "", "stuck_since": ""},
            },
            return_document=ReturnDocument.AFTER,
        )
        return None if document is None else _request(document)


def _document(request: ErasureRequest) -> dict[str, Any]:
    document = request.model_dump(exclude_none=True, exclude={"request_id", "reports"})
    document["reports"] = {name: report.model_dump() for name, report in request.reports.items()}
    return {"_id": request.request_id, **document}


def _request(document: dict[str, Any]) -> ErasureRequest:
    fields = {key: value for key, value in document.items() if key != "_id"}
    return ErasureRequest.model_validate({**fields, "request_id": document["_id"]})
