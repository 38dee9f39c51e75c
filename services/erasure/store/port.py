"""What the erasure service keeps, as the service layer sees it: erasure and access requests.

One request per request id, the person only as their keyed hash (never the email), with the
progress of an erasure: the participants still to report (`pending`), their reports, the
attempts, when the next is due (`next_attempt_at`, only while the request is open), since when
it is stuck, and when it was started and completed.

Both adapters keep datetimes to the millisecond and return them timezone-aware (UTC). Lists
of requests come oldest first; requests received in the same millisecond by request id. A
request done (completed, or an access request answered) is deleted by the retention sweep at
the end of its period; an open one is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from services.erasure.domain import ErasureRequest
from shared.contracts.erasure import ErasureReported


@dataclass(frozen=True)
class Attempt:
    """One more round of asking a request's silent participants: the `number`-th, the next due
    at `next_at`; with `stuck_since`, the request is stuck (since then)."""

    number: int
    next_at: datetime
    stuck_since: datetime | None = None

    def changes(self) -> dict[str, Any]:
        """The request's fields this attempt sets."""
        changes: dict[str, Any] = {"attempts": self.number, "next_attempt_at": self.next_at}
        if self.stuck_since is not None:
            changes |= {"status": "stuck", "stuck_since": self.stuck_since}
        return changes


class ErasureStore(Protocol):
    async def prepare(self) -> None:
        """Create what the store needs (tables, indexes); safe at every start."""
        ...

    async def add(self, request: ErasureRequest) -> ErasureRequest | None:
        """Store a new request; None when it was new. If its id is taken, the request stored
        under it is returned and left as it is."""
        ...

    async def request(self, request_id: str) -> ErasureRequest | None: ...

    async def requests(self, open_only: bool) -> list[ErasureRequest]:
        """Every request, or only the open ones (received, in progress, stuck), oldest first."""
        ...

    async def requests_of(self, subject: str) -> list[ErasureRequest]:
        """The person's erasure and access requests, oldest first."""
        ...

    async def due(self, now: datetime) -> list[ErasureRequest]:
        """The requests whose next attempt is due by `now`, the longest due first."""
        ...

    async def cleared_dead_letters(self, request_id: str, removed: int, now: datetime) -> None:
        """The erasure service's own part is done; the request starts now. Recorded before the
        participants are asked, whose reports may complete the request at once. The counts
        are added up, as a repeated start after a crash finds only what is left; `started_at`
        stays the first start."""
        ...

    async def started(self, request_id: str, next_attempt_at: datetime) -> None:
        """The participants have been asked for the first time: a received request is in
        progress (one already further along is left as it is)."""
        ...

    async def attempted(self, request_id: str, attempt: Attempt) -> None:
        """The silent participants of a request in progress or stuck have been asked again; a
        completed request is left as it is."""
        ...

    async def add_report(self, report: ErasureReported) -> ErasureRequest | None:
        """Take a participant's first report of a request, while the request waits for it: the
        request as it is afterwards. None when it does not wait for it (a repeat, or an unknown
        request). Of concurrent reports each lands, and the same report only once."""
        ...

    async def complete(self, request_id: str, now: datetime) -> ErasureRequest | None:
        """Mark an open request completed once no participant is missing: the completed
        request, with no next attempt and no longer stuck. None if it is not complete, or
        already completed: of concurrent calls exactly one returns the request."""
        ...

    async def count_done_before(self, before: datetime) -> int:
        """How many requests received before `before` are done (completed or answered)."""
        ...

    async def delete_done_before(self, before: datetime) -> int:
        """Delete the requests received before `before` that are done; how many."""
        ...
