"""The disclosure service's part of the daily retention sweep (shared/retention_sweep.py).

- Held disclosures: one held longer than its retention is cancelled, its copy of the data
  deleted; the log keeps it as cancelled, with why. One being released is left to its release.
- The disclosure log: an entry goes at the end of its order's retention under the Accounting
  Act, whomever it names. A person whose own data expired elsewhere (a buyer silent for 36
  months, a recipient 24 months after the order) is not taken out of the log meanwhile: the
  log is the proof of to whom their data went (Art. 5(2), 19), and names them only by keyed
  hash; their hash goes with the entry (docs/retention.md). An erased person's was replaced
  by their erasure's reference at once, as before.

The sweep cancels before it deletes, so an entry both held too long and past the log's end is
counted in both, as both happen to it.
"""

from __future__ import annotations

from datetime import date, datetime

from services.disclosure.store import DisclosureStore
from shared.retention_policy import Category, RetentionPolicy


class DisclosureRetention:
    categories = (Category.HELD_DISCLOSURE, Category.DISCLOSURE_LOG)

    def __init__(self, store: DisclosureStore, policy: RetentionPolicy) -> None:
        self._store = store
        self._held = policy[Category.HELD_DISCLOSURE]
        self._log = policy[Category.DISCLOSURE_LOG]

    async def expired(self, as_of: date) -> dict[Category, int]:
        return {
            Category.HELD_DISCLOSURE: await self._store.count_held_before(
                self._held.expired_before(as_of)
            ),
            Category.DISCLOSURE_LOG: await self._store.count_log_before(
                self._log.expired_before(as_of)
            ),
        }

    async def delete_expired(self, as_of: date, now: datetime) -> dict[Category, int]:
        reason = f"cancelled: held longer than {self._held.period.describe('en')} (retention)"
        return {
            Category.HELD_DISCLOSURE: await self._store.cancel_held_before(
                self._held.expired_before(as_of), reason
            ),
            Category.DISCLOSURE_LOG: await self._store.delete_log_before(
                self._log.expired_before(as_of)
            ),
        }
