"""What the disclosure service keeps, as the service layer sees it: the provider registry and the
disclosure log.

The log has one entry per order and provider. A sent entry names the people by subject hash and
lists the fields sent; it keeps no copy of the data. A held one keeps the disclosure it will send
until it is released; releasing claims it first (`held` → `releasing`, atomically), so two
releases can never both send it. Once it is sent or cancelled, the held copy is deleted.

An entry names each person with their place on the order (`Named`: buyer or recipient), so an
erasure notice can tell the provider whose data of the order to erase. When a person is erased,
their held disclosures are cancelled, and in every entry their subject hash is replaced by
`erased:<request id>`, their place kept: the log still proves to whom the erased person's data
was disclosed, without naming them. Once an entry names nobody, `kept_until` says the last day it
is kept (that of the order's ledger lines); the retention sweep deletes it after that day.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from shared.contracts.disclosure_ops import HeldDisclosure, SentDisclosure
from shared.contracts.disclosures import Disclosure
from shared.contracts.erasure import Role
from shared.contracts.providers import Provider
from shared.erasure.records import ErasureRecords

Status = Literal["sent", "held", "releasing", "cancelled"]
SENT: Status = "sent"
HELD: Status = "held"
RELEASING: Status = "releasing"
CANCELLED: Status = "cancelled"
NOT_SENT: tuple[Status, ...] = (HELD, RELEASING)
# A release that crashed after claiming a disclosure leaves it `releasing`; after this long
# another release may claim it again (and, if the first did publish, send it a second time
# with the same disclosure id: delivery is at least once).
RELEASE_LEASE = timedelta(minutes=1)
PROVIDER_FIELDS = frozenset({"name", "country", "contact_email", "status"})
"""The registry fields `change_provider` may set (besides who changed it, and when)."""


@dataclass(frozen=True)
class Named:
    """A person an entry names (their subject hash, or an erased person's reference), and their
    place on the order; `role` None for entries logged before the log kept it."""

    subject: str
    role: Role | None = None


People = Sequence[Named | str]
"""Whom an entry names; a bare subject names a person without saying as whom."""


def people_of(people: People) -> list[Named]:
    """Each person once per role, in a stable order: by subject, then buyer before recipient."""
    named = {person if isinstance(person, Named) else Named(person) for person in people}
    return sorted(named, key=lambda person: (person.subject, person.role or ""))


@dataclass(frozen=True)
class NamedEntry:
    """A log entry as an erasure sees it: whom it names, and when its order was placed (None
    for entries logged before orders' dates were logged)."""

    disclosure_id: str
    subjects: tuple[str, ...]
    placed_at: datetime | None


@dataclass(frozen=True)
class LogEntry:
    """One entry of the disclosure log, whatever its status; never the held copy of the data,
    only whether there is one."""

    disclosure_id: str
    order_id: str
    provider_id: str
    status: Status
    subjects: tuple[str, ...]
    people: tuple[Named, ...]
    product_ids: tuple[str, ...]
    fields: tuple[str, ...] | None
    placed_at: datetime | None
    recorded_at: datetime
    sent_at: datetime | None
    released_by: str | None
    hold_reason: str | None
    kept_until: str | None
    holds_data: bool


class DisclosureStore(Protocol):
    """Subjects come back sorted, each once; datetimes UTC, to the millisecond."""

    erasures: ErasureRecords

    async def prepare(self) -> None:
        """Create what the store needs (tables, indexes); safe at every start."""
        ...

    # --- providers -----------------------------------------------------------------------------

    async def add_provider(self, provider: Provider) -> bool:
        """False when the id is taken: a registration never overwrites another."""
        ...

    async def provider(self, provider_id: str) -> Provider | None: ...

    async def providers(self, provider_ids: Iterable[str] | None = None) -> list[Provider]:
        """All registered providers, or those of these ids that are, by id."""
        ...

    async def change_provider(
        self, provider_id: str, changes: dict[str, Any], actor: str, now: datetime
    ) -> Provider | None:
        """Set only the fields given (of `PROVIDER_FIELDS`), so that concurrent changes of other
        fields are not undone; the provider as changed, or None when it is not registered."""
        ...

    # --- disclosure log ------------------------------------------------------------------------

    async def is_recorded(self, disclosure_id: str) -> bool: ...

    async def record_sent(
        self, disclosure: Disclosure, people: People, now: datetime, released_by: str | None = None
    ) -> None:
        """Log the disclosure as sent, with the fields it carried (`disclosed_fields`), deleting
        the held copy of the data if there was one.
        Repeating it (a redelivery, a release) updates the entry; it is never logged twice."""
        ...

    async def record_held(
        self, disclosure: Disclosure, people: People, reason: str, now: datetime
    ) -> None:
        """Log the disclosure as held, with a copy of it to send on release; an entry already
        logged (held or sent) is left as it is."""
        ...

    async def held(self, order_id: str | None = None) -> list[HeldDisclosure]:
        """Disclosures not sent yet (all, or one order's), oldest first, without their data."""
        ...

    async def note_hold_reason(self, disclosure_id: str, reason: str) -> None:
        """A new reason for a disclosure still held (not one being released)."""
        ...

    async def claim_for_release(self, disclosure_id: str, now: datetime) -> Disclosure | None:
        """Take a held disclosure for sending, or None when another release has it (for
        `RELEASE_LEASE`) or it is sent or cancelled. Of concurrent claims exactly one wins."""
        ...

    async def give_back(self, disclosure_id: str) -> None:
        """A claimed disclosure that could not be sent is held again."""
        ...

    async def sent_naming(
        self, subject: str | list[str], limit: int | None = None
    ) -> list[SentDisclosure]:
        """Sent disclosures naming a person (or any of several names for them), newest first,
        then by disclosure id; at most `limit`."""
        ...

    async def sent_to(self, provider_id: str, limit: int | None = None) -> list[SentDisclosure]:
        """Sent disclosures to a provider, in the same order."""
        ...

    async def held_of(self, subject: str) -> list[HeldDisclosure]:
        """The person's disclosures not sent yet, oldest first, without their data."""
        ...

    async def cancel_held(self, subject: str, reason: str) -> None:
        """Never send the person's held disclosures (nor those being released); their held
        copy of the data is deleted."""
        ...

    async def replace_subject(self, subject: str, reference: str) -> None:
        """Put `reference` in place of the person's hash in every entry that names them, in
        each of their roles; repeating it after a crash finishes the job."""
        ...

    async def entries_naming(self, subject: str) -> list[NamedEntry]:
        """The entries that name `subject` (a hash or an erased person's reference), by id."""
        ...

    async def log_of(self, order_id: str) -> list[LogEntry]:
        """Every entry of the order's log, whatever its status, by provider."""
        ...

    async def keep_until(self, disclosure_id: str, until: str) -> None:
        """The entry names nobody now: keep it to the end of this day (ISO), then delete it."""
        ...

    async def delete_expired_entries(self, before: str) -> int:
        """Delete the entries kept to a day before `before` (ISO); how many were deleted."""
        ...

    # --- the retention sweep -------------------------------------------------------------------

    async def count_held_before(self, before: datetime) -> int:
        """How many disclosures have been held (not being released) since before `before`."""
        ...

    async def cancel_held_before(self, before: datetime, reason: str) -> int:
        """Never send the disclosures held since before `before` (one being released is left
        to its release); their held copy of the data is deleted, the entry kept as cancelled
        with `reason`. How many were cancelled."""
        ...

    async def count_log_before(self, before: datetime) -> int:
        """How many entries, whatever their status, are of orders placed before `before`."""
        ...

    async def delete_log_before(self, before: datetime) -> int:
        """Delete the entries of orders placed before `before`, whomever they name (an entry
        logged before orders' dates were is kept); how many."""
        ...
