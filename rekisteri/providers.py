"""`rekisteri providers`: the service providers that receive their orders' data."""

from __future__ import annotations

import click

from rekisteri.output import build, call, emit, json_option
from shared.contracts.providers import AddProvider, ListProviders


@click.group()
def providers() -> None:
    """The service providers that receive their orders' data."""


@providers.command("add")
@click.argument("provider_id")
@click.option("--name", required=True, help="The provider's name.")
@click.option("--country", required=True, help="ISO 3166-1 alpha-2 code; must be in the EEA.")
@click.option("--contact-email", default=None, help="Where the provider's data contact is reached.")
@click.pass_context
def add(
    context: click.Context, provider_id: str, name: str, country: str, contact_email: str | None
) -> None:
    """Register PROVIDER_ID (lower-case letters, digits, dashes) and create its queue."""
    command = build(
        AddProvider,
        provider_id=provider_id,
        name=name,
        country=country.upper(),
        contact_email=contact_email,
    )
    provider = call(context, "disclosure", command)
    click.echo(
        f"registered provider {provider['provider_id']} ({provider['name']}, "
        f"{provider['country']}); its data goes to queue disclosures.{provider['provider_id']}"
    )


@providers.command("list")
@json_option
@click.pass_context
def list_(context: click.Context, as_json: bool) -> None:
    """List registered providers."""
    result = call(context, "disclosure", ListProviders())
    emit(result, as_json, ["provider_id", "name", "country", "status", "created_at", "created_by"])
