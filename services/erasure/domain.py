"""Erasure and access requests, decided without a broker or a database.

An erasure request is received, then in progress once every participant (orders, consent,
disclosure) has been asked to erase its slice of the person, and completed when all of them have
reported. A participant that stays silent is asked again, each time after twice the wait before
(up to a maximum); a request still missing reports `stuck_after` its start is stuck, with the
missing services, until they report. Every request has a deadline (a month: GDPR Art. 12(3)).
An access request is answered at once and recorded as answered.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.erasure import (
    ErasureReason,
    ErasureReported,
    ErasureRequestView,
    OrderPerson,
    Receipt,
    RequestStatus,
    RequestType,
    Retained,
    ServiceReceipt,
)
from shared.times import to_millis
from shared.topology import ERASURE_PARTICIPANTS

OPEN_STATUSES: tuple[RequestStatus, ...] = ("received", "in_progress", "stuck")
CLOSED_STATUSES: tuple[RequestStatus, ...] = ("completed", "answered")
"""A request in one of these is done: the retention sweep deletes it at the end of its period."""
WEBSHOP = "webshop"
OWN_PART = "erasure"
REQUEST_KEPT = Retained(
    what="the request: the person's keyed hash, reason, dates, who asked, and this receipt",
    basis="GDPR Art. 5(2) and 17: proof that the erasure was carried out, and what keeps it "
    "from being undone",
    until="as long as anything of the person is retained",
)


class Timing(BaseModel):
    model_config = ConfigDict(frozen=True)

    deadline: timedelta
    retry_first: timedelta
    retry_max: timedelta
    stuck_after: timedelta

    def retry_delay(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th request to the services: doubling, capped."""
        return min(self.retry_first * 2 ** max(attempts - 1, 0), self.retry_max)


class ErasureRequest(BaseModel):
    """One request as the erasure service keeps it: the person only as their keyed hash."""

    model_config = ConfigDict(frozen=True)

    request_id: str
    type: RequestType
    subject: str
    status: RequestStatus
    source: Literal["ops", "webshop"]
    requested_by: str
    received_at: datetime
    reason: ErasureReason | None = None
    note: str | None = None
    event_id: str | None = None
    order: OrderPerson | None = None
    """The order the person was named by, when not by email (their subject is the orders
    service's answer who is on it): the same request again is known without asking again."""
    deadline: datetime | None = None
    pending: list[str] = Field(default_factory=list)
    """The participants that have not reported yet."""
    reports: dict[str, ErasureReported] = Field(default_factory=dict)
    own_dead_letters: int = 0
    """The person's messages taken out of the erasure service's own dead-letter queues."""
    attempts: int = 0
    next_attempt_at: datetime | None = None
    started_at: datetime | None = None
    stuck_since: datetime | None = None
    completed_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


def new_erasure(
    request_id: str,
    subject: str,
    reason: ErasureReason,
    note: str | None,
    source: Literal["ops", "webshop"],
    requested_by: str,
    now: datetime,
    timing: Timing,
    event_id: str | None = None,
    order: OrderPerson | None = None,
) -> ErasureRequest:
    return ErasureRequest(
        request_id=request_id,
        type="erasure",
        subject=subject,
        status="received",
        source=source,
        requested_by=requested_by,
        # Whole milliseconds, as stored: it becomes every participant's `erased_at`, which an
        # event's time is compared with before and after the tombstone is stored.
        received_at=to_millis(now),
        reason=reason,
        note=note,
        event_id=event_id,
        order=order,
        deadline=now + timing.deadline,
        pending=list(ERASURE_PARTICIPANTS),
        # The request is started as soon as it is stored; should the service stop before
        # that, the periodic check starts it when this is due.
        next_attempt_at=now + timing.retry_first,
    )


def new_access(request_id: str, subject: str, requested_by: str, now: datetime) -> ErasureRequest:
    return ErasureRequest(
        request_id=request_id,
        type="access",
        subject=subject,
        status="answered",
        source="ops",
        requested_by=requested_by,
        received_at=now,
    )


def next_check(request: ErasureRequest, attempts: int, now: datetime, timing: Timing) -> datetime:
    """When to ask the silent services again; no later than the moment the request would be
    stuck, so that it shows as stuck on time."""
    retry_at = now + timing.retry_delay(attempts)
    started = request.started_at or request.received_at
    stuck_at = started + timing.stuck_after
    return retry_at if now >= stuck_at else min(retry_at, stuck_at)


def is_stuck(request: ErasureRequest, now: datetime, timing: Timing) -> bool:
    started = request.started_at or request.received_at
    return bool(request.pending) and now - started >= timing.stuck_after


def receipt(request: ErasureRequest) -> Receipt | None:
    """The completed erasure's receipt: per service what went and what stays; no personal data."""
    if request.status != "completed" or request.completed_at is None:
        return None
    assert request.reason is not None and request.deadline is not None
    services = {
        name: ServiceReceipt(
            reported_at=report.reported_at,
            erased=report.erased,
            kept=report.kept,
            providers_notified=report.providers_notified,
        )
        for name, report in sorted(request.reports.items())
    }
    services[OWN_PART] = ServiceReceipt(
        reported_at=request.started_at or request.received_at,
        erased={"dead letters": request.own_dead_letters},
        kept=[REQUEST_KEPT],
    )
    return Receipt(
        request_id=request.request_id,
        reason=request.reason,
        received_at=request.received_at,
        deadline=request.deadline,
        completed_at=request.completed_at,
        services=services,
        providers_notified=sorted(
            {
                provider
                for report in request.reports.values()
                for provider in report.providers_notified
            }
        ),
    )


def view(request: ErasureRequest, now: datetime) -> ErasureRequestView:
    return ErasureRequestView(
        request_id=request.request_id,
        type=request.type,
        status=request.status,
        reason=request.reason,
        note=request.note,
        source=request.source,
        requested_by=request.requested_by,
        order=request.order,
        received_at=request.received_at,
        deadline=request.deadline,
        overdue=request.is_open and request.deadline is not None and now > request.deadline,
        missing=request.pending if request.is_open else [],
        attempts=request.attempts,
        stuck_since=request.stuck_since,
        completed_at=request.completed_at,
        receipt=receipt(request),
    )
