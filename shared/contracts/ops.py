"""The envelope of the `rekisteri` tool's requests to a service, and of the replies.

A command goes to the `ops` exchange with the service's name as routing key and the AMQP
`reply_to` of RabbitMQ's direct reply-to; the service answers with an `OpsReply`. Each
service's commands are in the contracts module named after what they act on.
"""

from __future__ import annotations

from typing import Any

from shared.contracts.fields import Contract


class OpsReply(Contract):
    """The answer to a command: its result, or why it was not carried out."""

    ok: bool
    result: Any = None
    error: str | None = None
