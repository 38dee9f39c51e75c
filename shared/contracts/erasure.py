"""Erasure and access requests: the erasure service's commands and the events between services.

The erasure service hashes the email it is given (`shared.identity`) and from then on names the
person by that hash only: internal events and its own records never carry the email. Each
data-holding service erases its slice when told (`EraseSubject`) and reports what it erased and
what it had to keep (`ErasureReported`); the completed request's `Receipt` is built from those
reports and carries no personal data.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, Field, model_validator

from shared.contracts.fields import (
    Contract,
    Email,
    Identifier,
    ProviderId,
    SubjectHash,
    bounded_text,
)

ErasureReason = Literal["subject-request", "misuse"]
"""The person asked (GDPR Art. 17), or the company erases a customer who misused the service."""
RequestType = Literal["erasure", "access"]
RequestStatus = Literal["received", "in_progress", "stuck", "completed", "answered"]
Note = bounded_text(500)
ParticipantName = Literal["orders", "consent", "disclosure"]
"""`shared.topology.ERASURE_PARTICIPANTS`, as a type."""
Role = Literal["buyer", "recipient"]
"""A person's place on an order."""


class OrderPerson(Contract):
    """A person named by their place on an order: its buyer, or its recipient."""

    order_id: Identifier
    role: Role


class NamedByEmailOrOrder(Contract):
    """Names a person by their email, or by an order they are on (`order_id` and `role`): the
    only way to name a gift-card recipient the web shop has no email for. A person with an email
    named by an order is the same person as named by that email."""

    email: Email | None = None
    order_id: Identifier | None = None
    role: Role | None = None

    @model_validator(mode="after")
    def _one_way_of_naming(self) -> Self:
        by_order = self.order_id is not None or self.role is not None
        if (self.email is not None) == by_order:
            raise ValueError("give either email, or order_id with role")
        if by_order and (self.order_id is None or self.role is None):
            raise ValueError("order_id and role go together")
        return self

    @property
    def order(self) -> OrderPerson | None:
        """The order the person is named by; None when named by email."""
        if self.order_id is None or self.role is None:
            return None
        return OrderPerson(order_id=self.order_id, role=self.role)


# --- between the services (exchange `register.events`) ----------------------------------------


class EraseSubject(Contract):
    """Routing key `erase.subject.<service>`: erase this person's data from your slice.

    Sent again, with back-off, until the service reports; a service does its part once per
    `request_id` and answers a repeat with the report it gave the first time. Anything about
    the person that happened before `erased_at` may never bring their data back.
    """

    request_id: Identifier
    subject: SubjectHash
    reason: ErasureReason
    erased_at: AwareDatetime


class Retained(Contract):
    """Something a service had to keep after the erasure, why, and until when; the orders it
    concerns, and the provider when it is what a provider received."""

    what: str
    basis: str
    until: str
    order_ids: list[Identifier] = Field(default_factory=list)
    provider_id: ProviderId | None = None
    roles: list[OrderPerson] | None = Field(
        default=None,
        description="For what a provider received: the person's place on each of `order_ids` "
        "(both, for one who bought for themselves).",
    )


class ErasureReported(Contract):
    """Routing key `erasure.reported`: a service has erased its slice of a person.

    `erased` counts what was removed, by kind; `kept` says what stays and why. No personal data.
    """

    request_id: Identifier
    service: ParticipantName
    reported_at: AwareDatetime
    erased: dict[str, int]
    kept: list[Retained] = Field(default_factory=list)
    providers_notified: list[ProviderId] = Field(default_factory=list)


# --- operators' commands (exchange `ops`, routing key `erasure`) --------------------------------


class RequestErasure(NamedByEmailOrOrder):
    """Erase a person everywhere, named by email or by an order they are on. While an erasure
    of the same person is open, that one is returned instead of a second one being started."""

    command: Literal["erasure.request"] = "erasure.request"
    reason: ErasureReason
    note: Note | None = None


class ShowErasureRequest(Contract):
    command: Literal["erasure.status"] = "erasure.status"
    request_id: Identifier


class ListErasureRequests(Contract):
    command: Literal["erasure.list"] = "erasure.list"
    open_only: bool = False


class ReportSubject(Contract):
    """Everything a service holds on a person (GDPR Art. 15). Every service answers it; the
    erasure service also records that the access request was made, by whom and when.

    The person is named by `email`, or by `subject`, their keyed hash: how `rekisteri report
    --order` names someone the orders service found on an order (`person.lookup`).
    """

    command: Literal["report.subject"] = "report.subject"
    email: Email | None = None
    subject: SubjectHash | None = None

    @model_validator(mode="after")
    def _one_way_of_naming(self) -> Self:
        if (self.email is None) == (self.subject is None):
            raise ValueError("give either email or subject")
        return self

    def subject_hash(self, hasher: Callable[[str], str]) -> str:
        """The person's keyed hash: the one given, or that of the email."""
        if self.subject is not None:
            return self.subject
        assert self.email is not None
        return hasher(self.email)


ErasureCommand = Annotated[
    RequestErasure | ShowErasureRequest | ListErasureRequests | ReportSubject,
    Field(discriminator="command"),
]


# --- what the erasure service answers -------------------------------------------------------------


class ServiceReceipt(Contract):
    reported_at: datetime
    erased: dict[str, int]
    kept: list[Retained]
    providers_notified: list[str] = Field(default_factory=list)


class Receipt(Contract):
    """Proof that an erasure was carried out, with no personal data: hand it to the person."""

    request_id: str
    reason: ErasureReason
    received_at: datetime
    deadline: datetime
    completed_at: datetime
    services: dict[str, ServiceReceipt]
    providers_notified: list[str]


class ErasureRequestView(Contract):
    """An erasure or access request as staff see it; `missing` are the services not yet done."""

    request_id: str
    type: RequestType
    status: RequestStatus
    reason: ErasureReason | None = None
    note: str | None = None
    source: Literal["ops", "webshop"]
    requested_by: str
    order: OrderPerson | None = None
    """The order the person was named by, when not by email."""
    received_at: datetime
    deadline: datetime | None = None
    overdue: bool = False
    missing: list[str] = Field(default_factory=list)
    attempts: int = 0
    stuck_since: datetime | None = None
    completed_at: datetime | None = None
    receipt: Receipt | None = None
