"""Commands every service answers about itself: its queues, its dead letters, its audit log.

They go to the `ops` exchange with routing key `<service>.runtime`, so each service answers
for the queues and the audit log it owns, and a service that does not answer is itself the
finding.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field

from shared.contracts.fields import Contract

QueueName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")]
DeadLetterId = Annotated[str, Field(pattern=r"^[0-9a-f]{12}$")]
UserName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")]


class ReportStatus(Contract):
    command: Literal["status"] = "status"


class ListDeadLetters(Contract):
    command: Literal["dlq.list"] = "dlq.list"
    queue: QueueName | None = None
    limit: int = Field(default=100, ge=1, le=10_000)


class ReplayDeadLetters(Contract):
    """Send dead letters back to the queue they came from: the named ones, or all."""

    command: Literal["dlq.replay"] = "dlq.replay"
    ids: list[DeadLetterId] | None = None
    queue: QueueName | None = None


class PurgeDeadLetters(Contract):
    command: Literal["dlq.purge"] = "dlq.purge"
    queue: QueueName | None = None


class ListAuditEntries(Contract):
    """The service's audit log, newest first: everything since a time, or by one actor."""

    command: Literal["audit.list"] = "audit.list"
    since: AwareDatetime | None = None
    actor: UserName | None = None
    limit: int = Field(default=1000, ge=1, le=100_000)


class PreviewRetention(Contract):
    """How many records of each category of data the service's retention sweep would delete
    on day `as_of` (shared/retention_sweep.py), from what it holds now; nothing is deleted.
    Answered with an object from category to count."""

    command: Literal["retention.preview"] = "retention.preview"
    as_of: date


RuntimeCommand = Annotated[
    ReportStatus
    | ListDeadLetters
    | ReplayDeadLetters
    | PurgeDeadLetters
    | ListAuditEntries
    | PreviewRetention,
    Field(discriminator="command"),
]

AuditOutcome = Literal["ok", "refused", "invalid", "failed"]


class AuditEntry(Contract):
    """One command a service received: who sent it, when, what it asked, on whom, and how it went.

    `actor` is the sender's RabbitMQ user as the broker verified it (None: the command carried
    no user id and was refused). `subject` is the keyed hash of the person the command named by
    email; `targets` the ids it named (provider, order, request, queue, dead letters). `count`
    is how many records the answer held, for a listing or an export.
    """

    at: datetime
    service: str
    actor: str | None
    command: str
    outcome: AuditOutcome
    subject: str | None = None
    targets: dict[str, Any] = Field(default_factory=dict)
    count: int | None = None
    message_id: str | None = None


class QueueStatus(Contract):
    queue: str
    kind: Literal["work", "dead-letter", "commands"]
    messages: int
    consumers: int
    oldest_at: datetime | None = None
    """A dead-letter queue holding messages: when its oldest (at its head) was set aside."""


class ServiceStatus(Contract):
    """A service's answer to `status`: its queues, and the fingerprint of its identity key
    (shared.identity.key_fingerprint), which must be the same in every service."""

    identity_key: str
    queues: list[QueueStatus]


class DeadLetter(Contract):
    """A dead-lettered message as operators see it: why, from where, and a masked preview."""

    id: str
    dead_letter_queue: str
    source_queue: str
    reason: str
    routing_key: str
    rejected_at: str
    rejected_by: str
    message_id: str | None
    size: int
    preview: str
