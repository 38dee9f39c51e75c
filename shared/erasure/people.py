"""One person at a time: an event's writes about a person and that person's erasure never
interleave within a service.

Why a lock rather than a re-check: a handler reads the person's tombstone, then writes. An
erasure landing between the two (bury, then carry out) would find nothing yet to erase, and the
write would bring the person back: on the newsletter list again, a profile re-inserted, a
disclosure sent after the providers were told. Holding the person's lock from the tombstone
check to the last write (and, for a disclosure, the send), while the erasure holds it from the
burial to its report, makes the two happen one after the other: either the write is done before
the tombstone goes in (and the erasure's carry-out erases it), or the check sees the tombstone.

The lock lives in the service's process. The register runs one process per service (compose,
`make dev`; SQLite allows nothing else): that is what makes it sufficient. Running several
replicas of a data-holding service against one MongoDB would need the writes made conditional
on the tombstone in the database instead (docs/security.md lists it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any


class PersonLocks:
    """A lock per subject hash, made when first wanted and dropped when nobody holds or waits."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}
        self.on_wait: Callable[[str], None] | None = None
        """Called with the subject when a holder has to wait for another (tests observe the
        interleavings they inject with it)."""

    @asynccontextmanager
    async def holding(self, subjects: Iterable[str | None]) -> AsyncIterator[None]:
        """Hold the locks of all these people. Always taken in the same (sorted) order, so two
        holders of overlapping sets (an order's buyer and recipient) cannot deadlock."""
        ordered = sorted({subject for subject in subjects if subject})
        taken: list[str] = []
        try:
            for subject in ordered:
                self._users[subject] = self._users.get(subject, 0) + 1
                lock = self._locks.setdefault(subject, asyncio.Lock())
                if lock.locked() and self.on_wait is not None:
                    self.on_wait(subject)
                try:
                    await lock.acquire()
                except BaseException:
                    self._leave(subject)
                    raise
                taken.append(subject)
            yield
        finally:
            for subject in reversed(taken):
                self._locks[subject].release()
                self._leave(subject)

    def _leave(self, subject: str) -> None:
        self._users[subject] -= 1
        if self._users[subject] == 0:
            del self._users[subject]
            del self._locks[subject]

    def __len__(self) -> int:
        """How many people's locks exist now (held or waited for)."""
        return len(self._locks)


async def all_settled(*calls: Awaitable[Any]) -> list[Any]:
    """Run independent store calls together (on SQLite one round of the writer thread, to
    MongoDB at once) and return their results in order; raise the first failure only once every
    call has finished. `asyncio.gather` would raise at the first failure with the others still
    writing, and the person's lock, released on the way out, would no longer cover them."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results
