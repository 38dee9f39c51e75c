"""The provider registry and the commands that keep it (served by the disclosure service)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from shared.contracts.fields import Contract, CountryCode, Email, Name, ProviderId


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
