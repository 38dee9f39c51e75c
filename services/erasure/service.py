"""The erasure service's use cases: taking erasure requests from staff and the web shop, asking
the participants, collecting their reports, and recording and answering access requests.

A person is named by email, or by an order they are on (a gift-card recipient may have no
email). Only the orders service knows who is on an order, so it is asked (`person.lookup`); from
then on the request goes exactly as one naming an email: a person with an email named by an
order is found by the hash of that email, and erased once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from services.erasure.domain import (
    WEBSHOP,
    ErasureRequest,
    Timing,
    is_stuck,
    new_access,
    new_erasure,
    next_check,
    view,
)
from services.erasure.publisher import Participants
from services.erasure.store import Attempt, ErasureStore
from shared.contracts.erasure import (
    EraseSubject,
    ErasureReported,
    ErasureRequestView,
    NamedByEmailOrOrder,
    ReportSubject,
    RequestErasure,
)
from shared.contracts.orders import PersonOnOrder, missing_person
from shared.contracts.webshop import ErasureRequested
from shared.erasure.participation import DeadLetterRemover
from shared.errors import Refused
from shared.identity import SubjectHasher
from shared.requests import NoAnswer

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class ErasureService:
    def __init__(
        self,
        store: ErasureStore,
        hasher: SubjectHasher,
        participants: Participants,
        dead_letters: DeadLetterRemover,
        timing: Timing,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._hasher = hasher
        self._participants = participants
        self._dead_letters = dead_letters
        self._timing = timing
        self._clock = clock

    # --- requests ---------------------------------------------------------------------------------

    async def request_from_staff(self, command: RequestErasure, actor: str) -> ErasureRequestView:
        """A new erasure, or the one already open for the same person."""
        subject = await self._subject_for_staff(command)
        open_requests = [r for r in await self._store.requests_of(subject) if r.is_open]
        if open_requests:
            return view(open_requests[0], self._clock())
        request = new_erasure(
            str(uuid.uuid4()),
            subject,
            command.reason,
            command.note,
            "ops",
            actor,
            self._clock(),
            self._timing,
            order=command.order,
        )
        await self._store.add(request)
        _log("erasure requested", request, actor=actor)
        await self._start(request)
        return await self.show(request.request_id)

    async def request_from_webshop(self, event: ErasureRequested) -> None:
        """The web shop's request, once: the same request id again is the same request.

        Naming an order the register does not know, or a role whose person was erased already,
        it is dead-lettered; when the orders service does not say who is on the order, the
        handler fails and the request is retried after a back-off, as any failure is.
        """
        if event.order is not None:
            earlier = await self._store.request(event.request_id)
            if earlier is not None and earlier.order == event.order:
                return  # the same request again; its person may be erased by now
        subject = await self._subject_for_webshop(event)
        request = new_erasure(
            event.request_id,
            subject,
            event.reason,
            None,
            "webshop",
            WEBSHOP,
            self._clock(),
            self._timing,
            event_id=str(event.event_id),
            order=event.order,
        )
        existing = await self._store.add(request)
        if existing is not None:
            if existing.subject != subject or existing.type != "erasure":
                raise Refused(f"request_id {event.request_id} is taken by another request")
            return
        _log("erasure requested", request, actor=WEBSHOP)
        await self._start(request)

    async def _found(self, person: NamedByEmailOrOrder) -> PersonOnOrder:
        """The person's subject: the hash of their email, or whom the orders service finds on
        the order (`NoAnswer` when it cannot say)."""
        if person.order is None:
            assert person.email is not None
            return PersonOnOrder(subject=self._hasher(person.email))
        found = await self._participants.person_on_order(person.order)
        if found.error is not None:
            raise NoAnswer(f"the orders service could not say who is on an order: {found.error}")
        return found

    async def _subject_for_staff(self, command: RequestErasure) -> str:
        try:
            found = await self._found(command)
        except NoAnswer as error:
            raise Refused(
                f"{error}; is the orders service running? Nothing was started: try again"
            ) from None
        if found.missing is not None:
            assert command.order_id is not None and command.role is not None
            raise Refused(missing_person(command.order_id, command.role, found.missing))
        assert found.subject is not None
        return found.subject

    async def _subject_for_webshop(self, event: ErasureRequested) -> str:
        found = await self._found(event)
        if found.missing == "order":
            raise Refused("order_id: no order with this id is known to the register")
        if found.missing == "person":
            raise Refused("role: the order names nobody in this role any more (erased)")
        if found.missing == "unnamed":
            raise Refused(
                "role: the order's person in this role has no email and was recorded before "
                "such people were named by their order; name them by email"
            )
        assert found.subject is not None
        return found.subject

    async def show(self, request_id: str) -> ErasureRequestView:
        request = await self._store.request(request_id)
        if request is None:
            raise Refused(f"there is no request {request_id}")
        return view(request, self._clock())

    async def list(self, open_only: bool) -> list[ErasureRequestView]:
        now = self._clock()
        return [view(request, now) for request in await self._store.requests(open_only)]

    # --- asking the participants, and their reports ------------------------------------------------

    async def _start(self, request: ErasureRequest) -> None:
        """Clear the service's own dead letters of the person, then ask every participant."""
        removed = await self._dead_letters.remove_subject(request.subject)
        await self._store.cleared_dead_letters(request.request_id, removed, self._clock())
        await self._ask(request, request.pending)
        now = self._clock()
        await self._store.started(request.request_id, next_check(request, 1, now, self._timing))

    async def _ask(self, request: ErasureRequest, services: list[str]) -> None:
        assert request.reason is not None
        command = EraseSubject(
            request_id=request.request_id,
            subject=request.subject,
            reason=request.reason,
            erased_at=request.received_at,
        )
        for service in services:
            await self._participants.ask_to_erase(service, command)

    async def retry_due(self) -> None:
        """Ask again the participants of every request due for it; mark stuck what is late.

        Runs periodically: a request the service had not started before it stopped is started.
        """
        now = self._clock()
        for request in await self._store.due(now):
            if request.status == "received":
                await self._start(request)
                continue
            await self._ask(request, request.pending)
            attempts = request.attempts + 1
            stuck = is_stuck(request, now, self._timing)
            await self._store.attempted(
                request.request_id,
                Attempt(
                    attempts,
                    next_check(request, attempts, now, self._timing),
                    (request.stuck_since or now) if stuck else None,
                ),
            )
            if stuck and request.status != "stuck":
                _log(
                    "erasure stuck: services have not reported", request, count=len(request.pending)
                )

    async def record_report(self, report: ErasureReported) -> None:
        request = await self._store.add_report(report)
        if request is None:
            if await self._store.request(report.request_id) is None:
                raise Refused(f"there is no erasure request {report.request_id}")
            return  # a repeat: the first report counts
        if request.pending:
            return
        completed = await self._store.complete(report.request_id, self._clock())
        if completed is not None:
            _log("erasure completed", completed)

    # --- access requests ---------------------------------------------------------------------------

    async def record_access(self, person: ReportSubject, actor: str) -> dict[str, Any]:
        """Record the access request (who asked, when) and give the erasure service's part of the
        report: the person's erasure and access requests, with their receipts."""
        subject = person.subject_hash(self._hasher)
        request = new_access(str(uuid.uuid4()), subject, actor, self._clock())
        await self._store.add(request)
        _log("access requested", request, actor=actor)
        now = self._clock()
        return {
            "subject": subject,
            "requests": [view(r, now) for r in await self._store.requests_of(subject)],
        }


def _log(message: str, request: ErasureRequest, **extra: Any) -> None:
    log.info(
        message,
        extra={"request_id": request.request_id, "subject": request.subject, **extra},
    )
