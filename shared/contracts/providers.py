"""The provider registry and the commands that keep it (served by the disclosure service)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from shared.contracts.fields import Contract, CountryCode, Email, Name, ProviderId

ProviderStatusName = Literal["active", "suspended"]


class ProviderStatus:
    ACTIVE = "active"
    SUSPENDED = "suspended"


class Provider(Contract):
    provider_id: ProviderId
    name: Name
    country: CountryCode
    contact_email: Email | None = None
    status: ProviderStatusName
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


class UpdateProvider(Contract):
    """Changes a provider's name, country or contact email; what is left out stays as it is."""

    command: Literal["providers.update"] = "providers.update"
    provider_id: ProviderId
    name: Name | None = None
    country: CountryCode | None = None
    contact_email: Email | None = None


class ChangeProviderStatus(Contract):
    """Suspends a provider (nothing is disclosed to it from the next order on) or reactivates it."""

    command: Literal["providers.status"] = "providers.status"
    provider_id: ProviderId
    status: ProviderStatusName


class ListProviders(Contract):
    command: Literal["providers.list"] = "providers.list"


class ShowProvider(Contract):
    command: Literal["providers.show"] = "providers.show"
    provider_id: ProviderId


class IssueProviderCredentials(Contract):
    """Creates or rotates the provider's RabbitMQ user, which may read only its own queue."""

    command: Literal["providers.credentials"] = "providers.credentials"
    provider_id: ProviderId


class ProviderCredentials(Contract):
    """The reply to `providers.credentials`: who the provider logs in as and where (`amqp_url`
    carries no password: `rekisteri` makes or rotates the user itself with its caller's
    administrator rights, and prints the password once)."""

    provider_id: ProviderId
    username: str
    amqp_url: str
