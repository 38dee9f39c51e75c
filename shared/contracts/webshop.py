"""What the web shop publishes to the `webshop` exchange (version 1 of each payload)."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field, model_validator

from shared.contracts.erasure import ErasureReason, NamedByEmailOrOrder
from shared.contracts.fields import (
    BirthDate,
    City,
    Contract,
    CountryCode,
    CurrencyCode,
    Email,
    EventTime,
    Gender,
    Identifier,
    Name,
    Phone,
    PostalCode,
    ProviderId,
    Source,
    Street,
    TextVersion,
    Title,
)


class Address(Contract):
    street: Street
    postal_code: PostalCode
    city: City
    country: CountryCode


class Person(Contract):
    """Personal data (name, birth date, gender) and address data (address, phone, email)."""

    first_name: Name
    last_name: Name
    email: Email | None = None
    phone: Phone | None = None
    birth_date: BirthDate | None = None
    gender: Gender | None = None
    address: Address | None = None


class Buyer(Person):
    email: Email


class Recipient(Person):
    """The person the gift card is for; the web shop may not know their email."""


class OrderItem(Contract):
    product_id: Identifier
    title: Title
    provider_id: ProviderId
    quantity: int = Field(ge=1, le=1000)
    unit_price_cents: int = Field(ge=0, le=100_000_000)


class CheckoutConsents(Contract):
    """The buyer's answers to the two permission checkboxes, and the wording they saw."""

    newsletter: bool
    marketing: bool
    text_version: TextVersion


class OrderPlaced(Contract):
    """Routing key `order.placed`: a buyer completed an order in the web shop."""

    event_id: UUID
    occurred_at: EventTime
    order_id: Identifier
    buyer: Buyer
    recipient: Recipient
    items: list[OrderItem] = Field(min_length=1, max_length=100)
    currency: CurrencyCode
    consents: CheckoutConsents

    def provider_ids(self) -> list[str]:
        """The providers this order concerns, in order of first appearance."""
        return list(dict.fromkeys(item.provider_id for item in self.items))

    def items_for(self, provider_id: str) -> list[OrderItem]:
        return [item for item in self.items if item.provider_id == provider_id]


class ConsentUpdated(Contract):
    """Routing key `consent.updated`: a buyer changed a permission after checkout.

    Only what changed is sent: `newsletter`, `marketing` or both, never neither.
    """

    event_id: UUID
    occurred_at: EventTime
    email: Email
    newsletter: bool | None = None
    marketing: bool | None = None
    source: Source
    text_version: TextVersion

    @model_validator(mode="after")
    def _changes_a_permission(self) -> ConsentUpdated:
        if self.newsletter is None and self.marketing is None:
            raise ValueError("names no permission: newsletter, marketing or both are required")
        return self


class MarketingObjection(Contract):
    """Routing key `marketing.objection`: a person forbade direct marketing, or lifted that ban.

    `objected: false` withdraws an earlier objection; nothing else does.
    """

    event_id: UUID
    occurred_at: EventTime
    email: Email
    objected: bool
    source: Source


class ErasureRequested(NamedByEmailOrOrder):
    """Routing key `erasure.requested`: a person asked on the web shop for their data to be erased.

    The person is named by `email`, or by an order they are on: `order_id` with `role` (`buyer`
    or `recipient`), for a gift-card recipient the web shop has no email for. A request naming
    an order the register does not know, or a role whose person was erased already, is
    dead-lettered with the reason.

    `request_id` is the web shop's own id for the request; the same request delivered again, or
    sent again with the same `request_id`, is one erasure.
    """

    event_id: UUID
    occurred_at: EventTime
    request_id: Identifier
    reason: ErasureReason
