"""The envelope of the `rekisteri` tool's requests to a service, and of the replies.

A command goes to the `ops` exchange with the service's name as routing key and the AMQP
`reply_to` of RabbitMQ's direct reply-to; the service answers with an `OpsReply`. A command
whose answer may be too large for one message goes to routing key `<service>.stream` and is
answered with a sequence of `OpsPage`s instead (see `shared.commands.subscribe_streams`).
Each service's commands are in the contracts module named after what they act on.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from shared.contracts.fields import Contract


class OpsReply(Contract):
    """The answer to a command: its result, or why it was not carried out."""

    ok: bool
    result: Any = None
    error: str | None = None


class OpsPage(Contract):
    """One page of a streamed answer to a command.

    The pages of one answer carry the command's correlation id and are numbered by `sequence`
    from 0. The first carries `total`, the number of rows the answer will have (for a progress
    display: rows that change while the answer is sent can make the count differ slightly); the
    last has `final`. A final page with `error` means the answer was cut short, so the rows
    before it are incomplete.
    """

    sequence: int = Field(ge=0)
    total: int | None = Field(default=None, ge=0)
    rows: list[Any] = Field(default_factory=list)
    final: bool = False
    error: str | None = None
