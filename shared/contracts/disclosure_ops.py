"""Operators' view of the disclosure log: held disclosures, releasing them, who got whose data.

Also the union of every command the disclosure service serves (these and the provider
registry's).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from shared.contracts.erasure import ReportSubject
from shared.contracts.fields import Contract, Email, Identifier, ProviderId
from shared.contracts.providers import (
    AddProvider,
    ChangeProviderStatus,
    IssueProviderCredentials,
    ListProviders,
    ShowProvider,
    UpdateProvider,
)


class ListHeldDisclosures(Contract):
    command: Literal["disclosures.held"] = "disclosures.held"


class ReleaseOrder(Contract):
    """Sends the order's held disclosures whose provider may now receive them; never twice."""

    command: Literal["disclosures.release"] = "disclosures.release"
    order_id: Identifier


class ListDisclosures(Contract):
    """Sent disclosures of one person (named by email) or to one provider, newest first.

    The email is hashed by the service and neither stored nor logged.
    """

    command: Literal["disclosures.list"] = "disclosures.list"
    email: Email | None = None
    provider_id: ProviderId | None = None
    limit: int = Field(default=100, ge=1, le=10_000)

    @model_validator(mode="after")
    def _one_subject_of_the_question(self) -> Self:
        if (self.email is None) == (self.provider_id is None):
            raise ValueError("give either an email or a provider id")
        return self


class HeldDisclosure(Contract):
    """A disclosure not sent, and why; no personal data."""

    disclosure_id: str
    order_id: str
    provider_id: str
    status: Literal["held", "releasing"]
    reason: str
    held_since: datetime


class SentDisclosure(Contract):
    """One entry of the disclosure log: who got which fields of whose order, and when."""

    disclosure_id: str
    order_id: str
    provider_id: str
    sent_at: datetime
    fields: list[str]
    product_ids: list[str]
    message_id: str
    placed_at: datetime | None = None
    """When the order was placed (its log entry's retention runs from its year); None for an
    entry logged before orders' dates were."""


class ReleaseOutcome(Contract):
    order_id: str
    sent: list[str] = Field(description="Providers whose disclosure was sent now.")
    held: list[HeldDisclosure] = Field(description="Disclosures that stay held, and why.")


DisclosureCommand = Annotated[
    AddProvider
    | UpdateProvider
    | ChangeProviderStatus
    | ListProviders
    | ShowProvider
    | IssueProviderCredentials
    | ListHeldDisclosures
    | ReleaseOrder
    | ListDisclosures
    | ReportSubject,
    Field(discriminator="command"),
]
