"""The consent service's use cases: recording consent facts, answering and exporting them, its
part of an erasure, and letting a person's consents go when their retention ends."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from services.consent.domain import (
    AnyFact,
    ConsentState,
    Person,
    fact_from_objection,
    facts_from_checkout,
    facts_from_update,
    history,
    project,
    suppression,
)
from services.consent.publisher import ConsentEvents
from services.consent.settings import ConsentSettings
from services.consent.store import ConsentStore
from shared.commands import Stream
from shared.contracts.consent import ConsentChanged, Contact, Purpose
from shared.contracts.erasure import EraseSubject, ErasureReported, ReportSubject, Retained
from shared.contracts.webshop import ConsentUpdated, MarketingObjection, OrderPlaced
from shared.data_holder import DataHolder, Holding
from shared.erasure.people import all_settled
from shared.erasure.tombstone import Plan, Tombstone, ignore_buried
from shared.metrics import IGNORED_AFTER_RETENTION
from shared.retention_policy import Category, finnish_date

log = logging.getLogger(__name__)

SERVICE = ConsentSettings.service_name
AUDIENCE_PAGE_SIZE = 500
WebshopEvent = OrderPlaced | ConsentUpdated | MarketingObjection
SUPPRESSION_KEPT = Retained(
    what="suppression entry (the keyed hash and since when): the person had objected to direct "
    "marketing, and is never put on a marketing list again",
    basis="GDPR Art. 21(3): an objection to direct marketing must be honoured for good",
    until="the person withdraws the objection",
)


class ConsentService(DataHolder):
    # Its part of the daily retention sweep (shared/retention_sweep.py `SweepPart`).
    categories = (Category.BUYER,)

    def __init__(self, store: ConsentStore, events: ConsentEvents, holding: Holding) -> None:
        super().__init__(holding)
        self._store = store
        self._events = events
        self._retention = holding.policy[Category.BUYER]

    # Each event is handled holding the person's lock, from the tombstone check to the last
    # write and the announcement: no erasure of them can land in between.

    async def record_checkout(self, event: OrderPlaced) -> None:
        """The buyer's checkbox answers become facts, and their name the export's contact."""
        buyer = event.buyer
        subject = self._hasher(buyer.email)
        async with self._participation.people.holding([subject]):
            tombstone = await self._store.erasures.tombstone(subject)
            if self._buried(tombstone, event) or await self._expired(subject, event):
                return
            contact = Contact(
                email=buyer.email, first_name=buyer.first_name, last_name=buyer.last_name
            )
            await self._record(subject, facts_from_checkout(event), event, contact=contact)

    async def record_update(self, event: ConsentUpdated) -> None:
        subject = self._hasher(event.email)
        async with self._participation.people.holding([subject]):
            tombstone = await self._store.erasures.tombstone(subject)
            if not self._buried(tombstone, event) and not await self._expired(subject, event):
                await self._record(subject, facts_from_update(event), event)

    async def record_objection(self, event: MarketingObjection) -> None:
        """Recorded for anyone, known or not: an objection must block a person's first order too."""
        subject = self._hasher(event.email)
        async with self._participation.people.holding([subject]):
            tombstone = await self._store.erasures.tombstone(subject)
            if tombstone is not None and tombstone.buries(event.occurred_at) and event.objected:
                await self._keep_late_objection(subject, event, tombstone)
            elif self._buried(tombstone, event):
                return
            elif await self._expired(subject, event):
                # As the sweep would have kept it: an objection stands (Art. 21(3)).
                if event.objected:
                    await self._store.keep_suppressed_from(subject, since=event.occurred_at)
            else:
                await self._record(subject, [fact_from_objection(event)], event)

    async def _keep_late_objection(
        self, subject: str, event: MarketingObjection, tombstone: Tombstone
    ) -> None:
        """An objection made before the person's erasure but delivered after it still stands
        (Art. 21(3)): it becomes the suppression entry the erasure would have kept, standing
        from the erasure on (one kept by an earlier erasure is moved to this one, so that this
        erasure, if it is still being carried out, does not lift it). A person back since the
        erasure is projected again at once.

        The erased history cannot tell whether the person withdrew this objection before the
        erasure: it errs on the side of the objection.
        """
        if await self._store.keep_suppressed_from(subject, since=tombstone.erased_at):
            log.info(
                "an objection from before an erasure kept as a suppression",
                extra={"event_id": str(event.event_id), "subject": subject},
            )
        if await self._store.person(subject) is not None:
            await self._record(subject, [], event)

    async def _expired(self, subject: str, event: WebshopEvent) -> bool:
        """Whether the event is older than the retention of a buyer's consents and nothing
        newer of the person is held: a sweep today would delete what it recorded, so a late or
        replayed event does not bring back what has expired."""
        today = finnish_date(self._clock())
        if not self._retention.expired(event.occurred_at, today):
            return False
        last = await self._store.last_activity(subject)
        if last is not None and not self._retention.expired(last, today):
            return False
        IGNORED_AFTER_RETENTION.labels(SERVICE).inc()
        log.info(
            "a consent event older than its retention: left out",
            extra={"event_id": str(event.event_id), "subject": subject},
        )
        return True

    @staticmethod
    def _buried(tombstone: Tombstone | None, event: WebshopEvent) -> bool:
        """Whether the event predates the person's erasure, so it must change nothing."""
        if tombstone is None or not tombstone.buries(event.occurred_at):
            return False
        ids = {"event_id": str(event.event_id), "subject": tombstone.subject}
        ignore_buried(SERVICE, "a consent event", ids)
        return True

    async def _record(
        self,
        subject: str,
        facts: list[AnyFact],
        cause: WebshopEvent,
        *,
        contact: Contact | None = None,
    ) -> None:
        """Append the facts (and keep the contact, for a checkout), project the person's state
        again and announce it if it changed.

        Every step is idempotent, so a redelivered event after a crash anywhere in between
        completes what the first delivery left undone, the announcement included. Calls that do
        not depend on each other are issued together (`all_settled`).
        """
        writes = [self._store.append_facts(subject, facts)]
        if contact is not None:
            writes.append(
                self._store.save_contact(
                    subject, contact, as_of=cause.occurred_at, event_id=str(cause.event_id)
                )
            )
        new, *_ = await all_settled(*writes)
        recorded = await self._facts_with_suppression(subject)
        person = await self._store.save_state(subject, project(recorded), facts_seen=len(recorded))
        announced = await self._announce(person, cause)
        log.info(
            "consent facts recorded",
            extra={
                "event_id": str(cause.event_id),
                "subject": subject,
                "count": new,
                "announced": announced,
            },
        )

    async def _facts_with_suppression(self, subject: str) -> list[AnyFact]:
        """The person's facts; for someone erased, or whose data expired, after objecting, the
        standing objection their suppression entry stands for comes first. (An expiry leaves
        no tombstone to tell who may have one: it is read for everyone.)"""
        facts, since = await all_settled(
            self._store.facts_of(subject), self._store.suppressed_since(subject)
        )
        return facts if since is None else [suppression(since), *facts]

    async def _announce(self, person: Person | None, cause: WebshopEvent) -> bool:
        """Publish `consent.changed` if the stored state is not the one last announced.

        What is stored now may be a concurrent writer's newer projection: announcing it is
        right either way, and the writer that stored it finds nothing left to announce.
        """
        if person is None or not person.changed:
            return False
        summary = person.state.summary()
        await self._events.changed(
            ConsentChanged(
                **summary.model_dump(),
                subject=person.subject,
                version=person.version,
                event_id=cause.event_id,
                occurred_at=cause.occurred_at,
            )
        )
        await self._store.mark_announced(person.subject, summary, person.version)
        return True

    async def show(self, email: str, actor: str) -> dict[str, Any]:
        """A person's current permissions and objection, and their whole consent history."""
        return await self._show(self._hasher(email), actor)

    async def _show(self, subject: str, actor: str) -> dict[str, Any]:
        person = await self._store.person(subject)
        facts = await self._store.facts_of(subject)
        log.info("consent shown", extra={"subject": subject, "actor": actor})
        state = ConsentState() if person is None else person.state
        contact = None if person is None else person.contact
        return {
            "subject": subject,
            "contact": None if contact is None else contact.model_dump(),
            "permissions": {
                purpose: fact.model_dump(mode="json", exclude={"kind", "purpose"})
                for purpose, fact in state.permissions.items()
            },
            "objection": (
                None if state.objection is None else state.objection.model_dump(mode="json")
            ),
            "may_contact": state.may_contact,
            # The export needs a name: someone known only from consent events is not in it.
            "in_audience": state.may_contact if contact is not None else [],
            "history": [change.model_dump(mode="json", by_alias=True) for change in history(facts)],
        }

    async def report(self, person: ReportSubject, actor: str) -> dict[str, Any]:
        """What the consent service holds on the person (GDPR Art. 15): `show`'s answer, when
        their latest consent event or order happened (their data's retention runs from it),
        and after an erasure when it was and whether they stay suppressed."""
        subject = person.subject_hash(self._hasher)
        tombstone = await self._store.erasures.tombstone(subject)
        return {
            **await self._show(subject, actor),
            "last_activity": await self._store.last_activity(subject),
            "erased_at": None if tombstone is None else tombstone.erased_at,
            "suppressed_since": await self._store.suppressed_since(subject),
        }

    # --- erasure (`DataHolder.erase` runs the steps) ------------------------------------------

    async def plan_erasure(self, command: EraseSubject) -> Plan:
        """Every fact and the state go; an objection that stands is kept as a suppression.

        The objection stands if the person's state says so (for someone back since an earlier
        erasure, that state starts from the suppression it kept), or, for someone not back since
        an earlier erasure, if that erasure kept a suppression: erasing them again withdraws
        nothing.
        """
        person = await self._store.person(command.subject)
        return Plan(
            erased={
                "consent facts": await self._store.count_facts(command.subject),
                "permissions": int(person is not None),
            },
            kept=[SUPPRESSION_KEPT] if await self._objection_stands(command.subject) else [],
            providers_notified=[],
        )

    async def _objection_stands(self, subject: str) -> bool:
        person = await self._store.person(subject)
        if person is not None:
            return person.state.objected
        return await self._store.suppressed_since(subject) is not None

    async def carry_out_erasure(self, command: EraseSubject, report: ErasureReported) -> None:
        if report.kept:
            await self._store.suppress(command.subject, command.erased_at)
        else:
            # A suppression since this erasure is an objection from before it delivered after
            # the plan was made (`_keep_late_objection`): it stands.
            await self._store.lift_suppression(command.subject, before=command.erased_at)
        await self._store.erase_person(command.subject)

    # --- retention (shared/retention_sweep.py runs it daily) ----------------------------------
    #
    # This service knows a buyer by their consent events and their orders' checkout: whoever
    # has been silent here longer than a buyer's retention is erased as an erasure would erase
    # them (facts, projection, contact; a standing objection kept as a suppression), without a
    # tombstone: someone who comes back starts again, under their suppression if they had one.

    async def expired(self, as_of: date) -> dict[Category, int]:
        before = self._retention.expired_before(as_of)
        return {Category.BUYER: await self._store.count_inactive_before(before)}

    async def delete_expired(self, as_of: date, now: datetime) -> dict[Category, int]:
        before = self._retention.expired_before(as_of)
        expired = 0
        for subject in await self._store.inactive_before(before):
            expired += await self._expire(subject, before, now)
        return {Category.BUYER: expired}

    async def _expire(self, subject: str, before: datetime, now: datetime) -> int:
        async with self._participation.people.holding([subject]):
            last = await self._store.last_activity(subject)
            if last is None or last >= before:  # erased, or back, since they were found
                return 0
            if await self._objection_stands(subject):
                # Standing from their last event: anything they do after it is newer.
                await self._store.suppress(subject, last)
            else:
                await self._store.lift_suppression(subject, before=now)
            await self._store.erase_person(subject)
        return 1

    async def audience(self, purpose: Purpose, actor: str) -> Stream:
        """Everyone who may be contacted for `purpose` now, as a stream of contacts."""
        total = await self._store.count_audience(purpose)
        log.info("audience for %s exported", purpose, extra={"actor": actor, "count": total})
        return Stream(total, self._store.audience(purpose, AUDIENCE_PAGE_SIZE))
