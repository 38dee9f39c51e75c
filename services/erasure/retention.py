"""The erasure service's part of the daily retention sweep (shared/retention_sweep.py): its
erasure and access requests, with their receipts, at the end of the erasure records' period,
counted from the year each was received. A request still open is kept, whatever its age:
it is work not done, and `erasure list` shows it."""

from __future__ import annotations

from datetime import date, datetime

from services.erasure.store import ErasureStore
from shared.retention_policy import Category, RetentionPolicy


class ErasureRequestRetention:
    categories = (Category.ERASURE_RECORD,)

    def __init__(self, store: ErasureStore, policy: RetentionPolicy) -> None:
        self._store = store
        self._retention = policy[Category.ERASURE_RECORD]

    async def expired(self, as_of: date) -> dict[Category, int]:
        before = self._retention.expired_before(as_of)
        return {Category.ERASURE_RECORD: await self._store.count_done_before(before)}

    async def delete_expired(self, as_of: date, now: datetime) -> dict[Category, int]:
        before = self._retention.expired_before(as_of)
        return {Category.ERASURE_RECORD: await self._store.delete_done_before(before)}
