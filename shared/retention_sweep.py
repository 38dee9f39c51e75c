"""A service's daily retention sweep: the policy (shared/retention_policy.py) applied to what the
service holds, and the preview of what a sweep on a given day would delete.

Each service builds its sweep from parts (`SweepPart`): its own (orders: ledger lines, buyers,
recipients; consent: buyers; disclosure: held disclosures, the log; erasure: its requests), and
those every service has: its audit log, its dead letters and, for the three that take part in
erasures, their erasure reports. A part counts what has expired on a day (`expired`) and deletes
it (`delete_expired`) with the same queries, so the preview (`rekisteri retention preview`,
the runtime command `retention.preview`) tells what the sweep of that day would delete of what
is held now. A part deletes nothing that another part of the same sweep counts: each sweep
deletes what was expired when it began (an order stripped of its last person goes with the next
day's sweep, not this one's).

Only counts and categories are logged and exposed (`register_retention_deleted_total{service,
category}`), never anything of a person. A part that fails is logged and counted, the others go
on, and the next day's sweep tries it again. On SQLite, a sweep that deleted anything checkpoints
the write-ahead log, as an erasure does, so the deleted values do not linger there.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime
from functools import partial
from typing import Protocol

from faststream.rabbit import RabbitBroker

from shared.audit import AUDIT_LOG, AuditLog
from shared.database import Database
from shared.dead_letters import QueueInspector
from shared.erasure.records import ErasureRecords
from shared.metrics import RETENTION_DELETED, RETENTION_SWEEP_FAILED
from shared.retention_policy import (
    Category,
    Retention,
    RetentionPolicy,
    finnish_date,
    policy_from_environment,
)
from shared.settings import ServiceSettings
from shared.sqlite import SqliteDatabase

log = logging.getLogger(__name__)

RETENTION_SWEEP = "retention_sweep"
"""Where the broker's context holds the service's `RetentionSweep` (its preview command)."""
Counts = dict[Category, int]


class SweepPart(Protocol):
    """What a service holds of some categories of data, and how it lets what expired go."""

    @property
    def categories(self) -> tuple[Category, ...]: ...

    async def expired(self, as_of: date) -> Counts:
        """How many records of each category a sweep on day `as_of` would delete."""
        ...

    async def delete_expired(self, as_of: date, now: datetime) -> Counts:
        """Delete what has expired on day `as_of` (`now` is the sweep's moment); how many."""
        ...


class RetentionSweep:
    def __init__(
        self,
        service: str,
        parts: Sequence[SweepPart],
        scrub: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._service = service
        self._parts = tuple(parts)
        self._scrub = scrub
        self._clock = clock
        self.categories = tuple(
            dict.fromkeys(category for part in parts for category in part.categories)
        )
        for category in self.categories:  # every series exists from the start, at 0
            RETENTION_DELETED.labels(service, category)
            RETENTION_SWEEP_FAILED.labels(service, category)

    async def preview(self, as_of: date) -> dict[str, int]:
        """What a sweep on day `as_of` would delete, by category; nothing is deleted. A part
        that cannot tell fails the preview: a partial count would mislead."""
        counts = dict.fromkeys(self.categories, 0)
        for part in self._parts:
            for category, count in (await part.expired(as_of)).items():
                counts[category] += count
        return {str(category): count for category, count in counts.items()}

    async def run(self, now: datetime | None = None) -> dict[str, int]:
        """Delete everything whose retention has ended by today (`now`: the sweep's moment,
        for tests); how many records of each category went."""
        now = now or self._clock()
        as_of = finnish_date(now)
        counts = dict.fromkeys(self.categories, 0)
        for part in self._parts:
            try:
                deleted = await part.delete_expired(as_of, now)
            except Exception:
                log.exception(
                    "retention sweep of %s failed; the next sweep tries again",
                    ", ".join(part.categories),
                )
                for category in part.categories:
                    RETENTION_SWEEP_FAILED.labels(self._service, category).inc()
                continue
            for category, count in deleted.items():
                counts[category] += count
                if count:
                    RETENTION_DELETED.labels(self._service, category).inc(count)
                    log.info(
                        "retention sweep: %d %s record(s) deleted",
                        count,
                        category,
                        extra={"count": count},
                    )
        total = sum(counts.values())
        if total and self._scrub is not None:
            await self._scrub()
        log.info("retention sweep done", extra={"count": total})
        return {str(category): count for category, count in counts.items()}


class CutOffRetention:
    """Data of one category found by when it started: what started before the cut-off of the
    day has expired. Counted and deleted by the same cut-off."""

    def __init__(
        self,
        retention: Retention,
        count_before: Callable[[datetime], Awaitable[int]],
        delete_before: Callable[[datetime], Awaitable[int]],
    ) -> None:
        self.categories = (retention.category,)
        self._retention = retention
        self._count_before = count_before
        self._delete_before = delete_before

    async def expired(self, as_of: date) -> Counts:
        before = self._retention.expired_before(as_of)
        return {self._retention.category: await self._count_before(before)}

    async def delete_expired(self, as_of: date, now: datetime) -> Counts:
        before = self._retention.expired_before(as_of)
        return {self._retention.category: await self._delete_before(before)}


def service_policy(service: str) -> RetentionPolicy:
    """The policy of the service's environment; a wrong `RETENTION_*` setting stops it, naming
    the setting."""
    try:
        return policy_from_environment()
    except ValueError as error:
        raise SystemExit(f"{service}: {error}") from None


def retention_sweep(
    settings: ServiceSettings,
    broker: RabbitBroker,
    database: Database,
    policy: RetentionPolicy,
    parts: Sequence[SweepPart],
    *,
    inspector: QueueInspector,
    erasure_records: ErasureRecords | None = None,
) -> RetentionSweep:
    """The service's sweep: its own `parts`, then its erasure reports (a participant's), its
    audit log and its dead letters. Kept where the runtime commands find it (the preview);
    the service runs it daily (shared/runtime.py `every`)."""
    shared: list[SweepPart] = []
    if erasure_records is not None:
        # A participant's reports, by when they were made; its tombstones are not in the
        # policy (docs/retention.md) and stay.
        shared.append(
            CutOffRetention(
                policy[Category.ERASURE_RECORD],
                erasure_records.count_reports_before,
                erasure_records.delete_reports_before,
            )
        )
    audit: AuditLog = broker.context.get(AUDIT_LOG)
    shared.append(
        CutOffRetention(policy[Category.AUDIT_LOG], audit.count_before, audit.delete_before)
    )
    # Every dead-letter queue the service answers for, by when each message was set aside.
    shared.append(
        CutOffRetention(
            policy[Category.DEAD_LETTER],
            partial(inspector.expire, delete=False),
            partial(inspector.expire, delete=True),
        )
    )
    sweep = RetentionSweep(
        settings.service_name,
        [*parts, *shared],
        scrub=database.scrub if isinstance(database, SqliteDatabase) else None,
    )
    broker.context.set_global(RETENTION_SWEEP, sweep)
    return sweep
