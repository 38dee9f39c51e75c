"""What the consent service keeps, as the service layer sees it.

- History: append-only facts, one per event and topic (`Fact.fact_id`), each with when it was
  first recorded. Never changed; deleted only with the person.
- People: per subject hash, the projection of the person's facts (`ConsentState`, built from
  `version` facts), what was last announced as `consent.changed`, and the buyer's `Contact`
  from their latest order. A person with a contact is addressable.
- The audience of a purpose: everyone who may be contacted for it (`ConsentState.may_contact`)
  and is addressable, in subject-hash order.
- Suppressions: per subject hash, since when a person who had objected stays suppressed after
  their data was erased, or expired.
- Activity: per subject hash, when their latest consent event or order happened (the latest
  fact's `occurred_at`, or the contact's `as_of`), kept by `append_facts` and `save_contact`
  as they write: the retention sweep finds who has been silent too long by it, indexed.

Datetimes come back timezone-aware, in UTC, truncated to whole milliseconds (what both
adapters keep), whatever zone and precision they were given in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Protocol

from services.consent.domain import AnyFact, ConsentState, Person
from shared.contracts.consent import ConsentSummary, Contact, Purpose
from shared.erasure.records import ErasureRecords


class ConsentStore(Protocol):
    erasures: ErasureRecords

    async def prepare(self) -> None:
        """Create what the store needs (tables, indexes); safe at every start."""
        ...

    # --- history -------------------------------------------------------------------------------

    async def append_facts(self, subject: str, facts: list[AnyFact]) -> int:
        """Record the facts not recorded before (by `fact_id`); how many were new. A fact
        already recorded keeps its first `recorded_at`."""
        ...

    async def facts_of(self, subject: str) -> list[AnyFact]:
        """The person's facts with `recorded_at`, in the order they happened (then by event id
        and topic)."""
        ...

    async def count_facts(self, subject: str) -> int: ...

    # --- people --------------------------------------------------------------------------------

    async def save_state(self, subject: str, state: ConsentState, facts_seen: int) -> Person | None:
        """Store the projection unless one built from as many facts or more is stored; the
        person as stored afterwards, whichever projection won (None: erased meanwhile).

        History only grows, so a projection built from more facts includes every fact of one
        built from fewer: of concurrent writers, the one that saw the most facts always wins.
        """
        ...

    async def save_contact(
        self, subject: str, contact: Contact, as_of: datetime, event_id: str
    ) -> bool:
        """Keep the contact details unless the stored ones are from a later order (by when it
        happened, then by event id) or the same one; True when they changed. Makes the person
        addressable. Of concurrent writers, the latest order always wins."""
        ...

    async def person(self, subject: str) -> Person | None:
        """The person's projection, announcement and contact; a person known only from an
        order has an empty state and version 0."""
        ...

    async def mark_announced(self, subject: str, summary: ConsentSummary, version: int) -> None:
        """Remember what was published, unless a projection other than `version` is stored."""
        ...

    # --- the audience ----------------------------------------------------------------------------

    async def count_audience(self, purpose: Purpose) -> int: ...

    def audience(self, purpose: Purpose, page_size: int) -> AsyncIterator[list[dict[str, str]]]:
        """Everyone in the audience of `purpose`, as `Contact` fields, in subject-hash order,
        `page_size` at a time (no empty page). Read from the store a page at a time: neither
        the whole audience nor a long hold on the store. The contacts were validated when
        stored, and are passed on as they are (a million rows need no second validation)."""
        ...

    # --- erasure and suppressions --------------------------------------------------------------

    async def erase_person(self, subject: str) -> None:
        """Delete the person's facts, projection and activity: they leave every audience at
        once."""
        ...

    async def suppress(self, subject: str, since: datetime) -> None:
        """Keep the person suppressed since `since`, replacing any earlier suppression."""
        ...

    async def keep_suppressed_from(self, subject: str, since: datetime) -> bool:
        """Keep the person suppressed from `since` on at the latest: a new suppression, or one
        standing since earlier moved to `since` (so that an erasure at `since` that is still
        being carried out does not lift it). True if anything changed."""
        ...

    async def lift_suppression(self, subject: str, before: datetime) -> None:
        """Lift the person's suppression if it stands since before `before`."""
        ...

    async def suppressed_since(self, subject: str) -> datetime | None: ...

    # --- activity (the retention sweep) --------------------------------------------------------

    async def last_activity(self, subject: str) -> datetime | None:
        """When the person's latest consent event or order happened; None: nothing held."""
        ...

    async def inactive_before(self, before: datetime) -> list[str]:
        """The people whose last activity is before `before`, the longest silent first."""
        ...

    async def count_inactive_before(self, before: datetime) -> int: ...
