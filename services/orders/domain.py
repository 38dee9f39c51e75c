"""What the orders service keeps of an order, decided without a broker or a database.

The buyer's order history is the orders; each order keeps its ledger lines (what accounting
law needs) apart from the two people's data (what an erasure strips). The latest known
data of each person is kept in a profile keyed by the subject hash, updated only by an event
newer than the one it was built from, so a late or repeated event never rolls it back.

An erased person's data leaves the orders, but the ledger lines stay until the accounting
retention ends (shared/retention.py), and then go. So does a person's data whose own retention
ended (shared/retention_policy.py: the daily sweep in service.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from shared.contracts.erasure import Role
from shared.contracts.webshop import OrderPlaced, Person
from shared.identity import SubjectHasher
from shared.retention import RETENTION_BASIS, ledger_kept_until
from shared.times import to_millis

ROLES: tuple[Role, ...] = ("buyer", "recipient")


class Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class LedgerLine(Record):
    product_id: str
    title: str
    provider_id: str
    quantity: int
    unit_price_cents: int

    @property
    def total_cents(self) -> int:
        return self.quantity * self.unit_price_cents


class Order(Record):
    order_id: str
    event_id: str
    placed_at: datetime
    recorded_at: datetime
    currency: str
    lines: list[LedgerLine]
    total_cents: int
    buyer_subject: str | None
    recipient_subject: str | None
    buyer: dict[str, Any] | None
    recipient: dict[str, Any] | None
    retention: dict[str, str] | None = None
    """Set when a person's data was erased from the order: why its ledger lines stay, until when."""
    erasures: list[str] | None = None
    """The erasure requests that stripped personal data from the order."""
    kept_until: str | None = None
    """Set once the order holds nobody's data: only its ledger lines are left, kept to this day."""

    def subject(self, role: Role) -> str | None:
        return self.buyer_subject if role == "buyer" else self.recipient_subject

    def person(self, role: Role) -> dict[str, Any] | None:
        return self.buyer if role == "buyer" else self.recipient


class Profile(Record):
    """A person's latest data as one role; `as_of` is when the event that gave it happened."""

    subject: str
    role: Role
    as_of: datetime
    person: dict[str, Any]


def person_data(person: Person) -> dict[str, Any]:
    """The person's fields as the web shop sent them, absent ones left out."""
    return person.model_dump(mode="json", exclude_none=True)


def subject_of(person: Person, order_id: str, role: Role, hasher: SubjectHasher) -> str:
    """How every service names a person of an order: by the hash of their email, or, without
    one (a gift-card recipient), by the hash of their place on the order."""
    if person.email:
        return hasher(person.email)
    return hasher.of_order_person(order_id, role)


def order_from_event(event: OrderPlaced, hasher: SubjectHasher, recorded_at: datetime) -> Order:
    lines = [LedgerLine(**item.model_dump()) for item in event.items]
    return Order(
        order_id=event.order_id,
        event_id=str(event.event_id),
        # Whole milliseconds, the precision both stores keep.
        placed_at=to_millis(event.occurred_at),
        recorded_at=to_millis(recorded_at),
        currency=event.currency,
        lines=lines,
        total_cents=sum(line.total_cents for line in lines),
        buyer_subject=subject_of(event.buyer, event.order_id, "buyer", hasher),
        recipient_subject=subject_of(event.recipient, event.order_id, "recipient", hasher),
        buyer=person_data(event.buyer),
        recipient=person_data(event.recipient),
    )


def profiles_from_order(order: Order) -> list[Profile]:
    """The buyer's profile, and the recipient's when the web shop knows their email (neither
    for a person erased from the order). A recipient known only by this order has no data
    but what the order holds: no profile repeats it."""
    profiles = []
    for role in ROLES:
        subject, person = order.subject(role), order.person(role)
        if subject is not None and person is not None and person.get("email"):
            profiles.append(
                Profile(subject=subject, role=role, as_of=order.placed_at, person=person)
            )
    return profiles


def retention(placed_at: datetime) -> dict[str, str]:
    return {"basis": RETENTION_BASIS, "until": ledger_kept_until(placed_at).isoformat()}


def without_people(order: Order, roles: set[Role], request_ids: list[str]) -> Order:
    """The order with the personal data of `roles` left out, as an erasure would have left it:
    for an order event that arrives only after the person in those roles was erased (by
    `request_ids`), or after their data's retention ended (no request)."""
    changes: dict[str, Any] = {
        "retention": retention(order.placed_at),
        # None when no erasure left them out (their data's retention had ended).
        "erasures": sorted({*(order.erasures or []), *request_ids}) or None,
    }
    for role in roles:
        changes |= {role: None, f"{role}_subject": None}
    if all(order.person(role) is None for role in ROLES if role not in roles):
        changes["kept_until"] = changes["retention"]["until"]
    return order.model_copy(update=changes)
