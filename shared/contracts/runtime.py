"""Commands every service answers about its own queues: status and dead letters.

They go to the `ops` exchange with routing key `<service>.runtime`, so each service answers
for the queues it owns, and a service that does not answer is itself the finding.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from shared.contracts.fields import Contract

QueueName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")]
DeadLetterId = Annotated[str, Field(pattern=r"^[0-9a-f]{12}$")]


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


RuntimeCommand = Annotated[
    ReportStatus | ListDeadLetters | ReplayDeadLetters | PurgeDeadLetters,
    Field(discriminator="command"),
]


class QueueStatus(Contract):
    queue: str
    kind: Literal["work", "dead-letter", "commands"]
    messages: int
    consumers: int


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
