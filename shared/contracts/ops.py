"""Commands the `rekisteri` tool sends to a service over RabbitMQ, and the replies.

A command goes to the `ops` exchange with the service's name as routing key and the AMQP
`reply_to` of RabbitMQ's direct reply-to; the service answers with an `OpsReply`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from shared.contracts.fields import Contract, CountryCode, Email, Name, ProviderId


class OpsReply(Contract):
    ok: bool
    result: Any = None
    error: str | None = None


# --- disclosure service ------------------------------------------------------------------------


class ProviderStatus:
    ACTIVE = "active"
    SUSPENDED = "suspended"


class Provider(Contract):
    provider_id: ProviderId
    name: Name
    country: CountryCode
    contact_email: Email | None = None
    status: Literal["active", "suspended"]
    created_at: datetime
    created_by: str
    changed_at: datetime
    changed_by: str


class AddProvider(Contract):
    command: Literal["providers.add"] = "providers.add"
    provider_id: ProviderId
    name: Name
    country: CountryCode
    contact_email: Email | None = None


class ListProviders(Contract):
    command: Literal["providers.list"] = "providers.list"


DisclosureCommand = Annotated[AddProvider | ListProviders, Field(discriminator="command")]


# --- erasure service ---------------------------------------------------------------------------


class ListErasureRequests(Contract):
    command: Literal["erasure.list"] = "erasure.list"
    open_only: bool = False


ErasureCommand = ListErasureRequests  # becomes a union as the erasure commands arrive
