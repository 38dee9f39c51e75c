"""What the orders service keeps of an order, decided without a broker or a database.

The buyer's order history is the orders; each order keeps its ledger lines (what accounting
law needs) apart from the two people's data (what an erasure will strip). The latest known
data of each person is kept in a profile keyed by the subject hash, updated only by an event
newer than the one it was built from, so a late or repeated event never rolls it back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from shared.contracts.webshop import OrderPlaced, Person
from shared.identity import SubjectHasher

Role = Literal["buyer", "recipient"]


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
    buyer_subject: str
    recipient_subject: str | None
    buyer: dict[str, Any]
    recipient: dict[str, Any]


class Profile(Record):
    """A person's latest data as one role; `as_of` is when the event that gave it happened."""

    subject: str
    role: Role
    as_of: datetime
    person: dict[str, Any]


def person_data(person: Person) -> dict[str, Any]:
    """The person's fields as the web shop sent them, absent ones left out."""
    return person.model_dump(mode="json", exclude_none=True)


def order_from_event(event: OrderPlaced, hasher: SubjectHasher, recorded_at: datetime) -> Order:
    lines = [LedgerLine(**item.model_dump()) for item in event.items]
    return Order(
        order_id=event.order_id,
        event_id=str(event.event_id),
        placed_at=event.occurred_at,
        recorded_at=recorded_at,
        currency=event.currency,
        lines=lines,
        total_cents=sum(line.total_cents for line in lines),
        buyer_subject=hasher(event.buyer.email),
        recipient_subject=hasher(event.recipient.email) if event.recipient.email else None,
        buyer=person_data(event.buyer),
        recipient=person_data(event.recipient),
    )


def profiles_from_order(order: Order) -> list[Profile]:
    """The buyer's profile, and the recipient's when the web shop knows their email."""
    profiles = [
        Profile(
            subject=order.buyer_subject, role="buyer", as_of=order.placed_at, person=order.buyer
        )
    ]
    if order.recipient_subject is not None:
        profiles.append(
            Profile(
                subject=order.recipient_subject,
                role="recipient",
                as_of=order.placed_at,
                person=order.recipient,
            )
        )
    return profiles
