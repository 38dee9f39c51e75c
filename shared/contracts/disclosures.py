"""What a provider receives on its own queue `disclosures.<provider_id>`: disclosures, and
erasure notices (tell them apart by `type`)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID, uuid5

from pydantic import AwareDatetime, Field

from shared.contracts.erasure import OrderPerson
from shared.contracts.fields import Contract, CurrencyCode, Identifier, ProviderId
from shared.contracts.webshop import Buyer, OrderItem, Recipient

# Fixed namespace: the same order and provider always give the same disclosure id, so a
# redelivered order event can never produce a second, differently-numbered disclosure.
DISCLOSURE_NAMESPACE = UUID("5f0c7d0e-4c1b-4e5e-9a57-6b1f0d2d7a10")
# Likewise an erasure request and a provider always give the same erasure notice id.
ERASURE_NOTICE_NAMESPACE = UUID("0c6f3a52-9d1e-4b7a-8f25-3e9a1d7c4b60")


def disclosure_id_for(order_id: str, provider_id: str) -> UUID:
    return uuid5(DISCLOSURE_NAMESPACE, f"{order_id}\x1f{provider_id}")


def erasure_notice_id_for(request_id: str, provider_id: str) -> UUID:
    """One notice per erasure request and provider, with the same id however often it is sent."""
    return uuid5(ERASURE_NOTICE_NAMESPACE, f"{request_id}\x1f{provider_id}")


class Disclosure(Contract):
    """One order's data for one provider: the two people and only that provider's items.

    `disclosure_id` is also the AMQP `message_id`; delivery is at least once, so a provider
    de-duplicates on it. `occurred_at` is when the order was placed.
    """

    type: Literal["disclosure"] = "disclosure"
    disclosure_id: UUID
    order_id: Identifier
    provider_id: ProviderId
    occurred_at: AwareDatetime
    buyer: Buyer
    recipient: Recipient
    items: list[OrderItem] = Field(min_length=1)
    currency: CurrencyCode


class ErasureNotice(Contract):
    """A person whose data the provider received for these orders has had it erased: erase it
    too (GDPR Art. 19). Carries no other personal data.

    `notice_id` is also the AMQP `message_id`; delivery is at least once, so a provider
    de-duplicates on it. `occurred_at` is when the erasure was requested.
    """

    type: Literal["erasure_notice"] = "erasure_notice"
    notice_id: UUID
    order_ids: list[Identifier] = Field(min_length=1)
    occurred_at: AwareDatetime
    roles: list[OrderPerson] | None = Field(
        default=None,
        description="Whether the person was the buyer or the recipient of each of `order_ids`: "
        "one entry per order and role (two for someone who bought for themselves). Erase that "
        "person's data of the order, and no one else's. Absent from notices of erasures "
        "planned before the register logged roles.",
    )
