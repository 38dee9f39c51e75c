"""Who may receive an order's data, decided without a broker or a database.

An order is split per provider: each provider gets one disclosure with both people's data and
only its own items. A provider that is unknown, suspended or outside the EEA gets nothing; the
disclosure is held with the reason until staff release it. Each provider reaches the broker as
its own RabbitMQ user, which may read its own queue and do nothing else
(`shared.permissions.provider_party`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from yarl import URL

from shared.contracts.disclosures import Disclosure, disclosure_id_for
from shared.contracts.providers import AddProvider, Provider, ProviderStatus, UpdateProvider
from shared.contracts.webshop import OrderPlaced
from shared.countries import EEA_RULE, is_in_eea
from shared.errors import Refused
from shared.retention import ledger_kept_until

AMQP_DEFAULT_PORTS = {"amqp": 5672, "amqps": 5671}


class ProviderRefused(Refused):
    """A change to the provider registry that breaks a rule, or a provider that is not
    registered; the text names the rule or the provider."""


@dataclass(frozen=True)
class PlannedDisclosure:
    disclosure: Disclosure
    hold_reason: str | None

    @property
    def held(self) -> bool:
        return self.hold_reason is not None


def _refuse_outside_eea(provider_id: str, country: str, outcome: str) -> None:
    if not is_in_eea(country):
        raise ProviderRefused(
            f"provider {provider_id} {outcome}: {country} is outside the European Economic "
            f"Area, and {EEA_RULE}"
        )


def register_provider(command: AddProvider, actor: str, now: datetime) -> Provider:
    _refuse_outside_eea(command.provider_id, command.country, "was not registered")
    return Provider(
        provider_id=command.provider_id,
        name=command.name,
        country=command.country,
        contact_email=command.contact_email,
        status=ProviderStatus.ACTIVE,
        created_at=now,
        created_by=actor,
        changed_at=now,
        changed_by=actor,
    )


def provider_changes(command: UpdateProvider) -> dict[str, Any]:
    """The registry fields an update sets; a country outside the EEA refuses the whole update."""
    changes = command.model_dump(include={"name", "country", "contact_email"}, exclude_none=True)
    if not changes:
        raise ProviderRefused(
            f"provider {command.provider_id} was not changed: give a name, a country or a "
            "contact email"
        )
    if "country" in changes:
        _refuse_outside_eea(command.provider_id, changes["country"], "was not changed")
    return changes


def not_registered(provider_id: str) -> str:
    return f"provider {provider_id} is not registered"


def hold_reason(provider_id: str, provider: Provider | None) -> str | None:
    """Why this provider may not receive personal data now, or None when it may."""
    if provider is None:
        return not_registered(provider_id)
    if provider.status != ProviderStatus.ACTIVE:
        return f"provider {provider_id} is {provider.status}"
    if not is_in_eea(provider.country):
        return f"provider {provider_id} is in {provider.country}, outside the EEA"
    return None


def plan_disclosures(
    event: OrderPlaced, providers: Mapping[str, Provider]
) -> list[PlannedDisclosure]:
    """One disclosure per provider of the order, each either to send or to hold."""
    return [
        PlannedDisclosure(
            Disclosure(
                disclosure_id=disclosure_id_for(event.order_id, provider_id),
                order_id=event.order_id,
                provider_id=provider_id,
                occurred_at=event.occurred_at,
                buyer=event.buyer,
                recipient=event.recipient,
                items=event.items_for(provider_id),
                currency=event.currency,
            ),
            hold_reason(provider_id, providers.get(provider_id)),
        )
        for provider_id in event.provider_ids()
    ]


def disclosed_fields(disclosure: Disclosure) -> list[str]:
    """The personal-data fields a disclosure carries (`buyer.email`, `recipient.address.city`)."""
    return sorted(
        _field_paths("buyer", disclosure.buyer.model_dump(exclude_none=True))
        + _field_paths("recipient", disclosure.recipient.model_dump(exclude_none=True))
    )


def _field_paths(prefix: str, data: Mapping[str, Any]) -> list[str]:
    paths = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            paths.extend(_field_paths(f"{prefix}.{key}", value))
        else:
            paths.append(f"{prefix}.{key}")
    return paths


ERASED = "erased:"


def erased_reference(request_id: str) -> str:
    """What stands in the disclosure log for a person erased by this request: the log still
    shows what was disclosed, and the erasure service's request says why the name is gone."""
    return f"{ERASED}{request_id}"


def unnamed_entry_kept_until(subjects: Iterable[str], placed_at: datetime | None) -> str | None:
    """The last day (ISO) a log entry naming `subjects` is kept once everyone it named is
    erased: that of its order's ledger lines. None while it still names someone; an entry
    logged before orders' dates were logged (`placed_at` None) has no end the log can tell, and
    is kept."""
    if any(not subject.startswith(ERASED) for subject in subjects):
        return None
    return None if placed_at is None else ledger_kept_until(placed_at).isoformat()


def provider_username(user_prefix: str, provider_id: str) -> str:
    return f"{user_prefix}{provider_id}"


def provider_amqp_url(provider_url: str, username: str, password: str) -> str:
    """`amqp://USER:PASSWORD@HOST:PORT/VHOST`, ready for the provider's AMQP client."""
    url = URL(provider_url)
    if url.explicit_port is None:
        url = url.with_port(AMQP_DEFAULT_PORTS[url.scheme])
    return str(url.with_user(username).with_password(password))
