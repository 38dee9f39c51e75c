"""`rekisteri providers`: the service providers that receive their orders' data."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

import click
from yarl import URL

from rekisteri.management import management_options, virtual_host
from rekisteri.output import build, call, emit, emit_record, json_option, stacked
from shared.contracts.providers import (
    AddProvider,
    ChangeProviderStatus,
    IssueProviderCredentials,
    ListProviders,
    ProviderStatus,
    ShowProvider,
    UpdateProvider,
)

COUNTRY_HELP = "ISO 3166-1 alpha-2 code; must be in the EEA."
EMAIL_HELP = "Where the provider's data contact is reached."

Command = TypeVar("Command", bound=Callable[..., object])


@click.group()
def providers() -> None:
    """The service providers that receive their orders' data."""


def _details_options(*, adding: bool) -> Callable[[Command], Command]:
    """`--name`, `--country` and `--contact-email`: a provider's details, which `add` requires
    but the email, and `update` changes where given."""
    return stacked(
        click.option(
            "--name",
            required=adding,
            help="The provider's name." if adding else "The provider's new name.",
        ),
        click.option("--country", required=adding, help=COUNTRY_HELP),
        click.option("--contact-email", default=None, help=EMAIL_HELP),
    )


def _send_details(
    context: click.Context,
    command: type[AddProvider | UpdateProvider],
    provider_id: str,
    name: str | None,
    country: str | None,
    contact_email: str | None,
) -> dict[str, Any]:
    """Add a provider or change its details; the provider as the registry now keeps it."""
    return call(
        context,
        "disclosure",
        build(
            command,
            provider_id=provider_id,
            name=name,
            country=None if country is None else country.upper(),
            contact_email=contact_email,
        ),
    )


def _describe(provider: dict[str, Any]) -> str:
    return f"{provider['provider_id']} ({provider['name']}, {provider['country']})"


@providers.command("add")
@click.argument("provider_id")
@_details_options(adding=True)
@click.pass_context
def add(
    context: click.Context, provider_id: str, name: str, country: str, contact_email: str | None
) -> None:
    """Register PROVIDER_ID (lower-case letters, digits, dashes) and create its queue."""
    provider = _send_details(context, AddProvider, provider_id, name, country, contact_email)
    click.echo(
        f"registered provider {_describe(provider)}; its data goes to queue "
        f"disclosures.{provider['provider_id']}"
    )


@providers.command("update")
@click.argument("provider_id")
@_details_options(adding=False)
@click.pass_context
def update(
    context: click.Context,
    provider_id: str,
    name: str | None,
    country: str | None,
    contact_email: str | None,
) -> None:
    """Change PROVIDER_ID's name, country or contact email; the rest stays as it is."""
    provider = _send_details(context, UpdateProvider, provider_id, name, country, contact_email)
    click.echo(f"updated provider {_describe(provider)}")


def _set_status(context: click.Context, provider_id: str, status: str) -> None:
    command = build(ChangeProviderStatus, provider_id=provider_id, status=status)
    provider = call(context, "disclosure", command)
    click.echo(f"provider {_describe(provider)} is {provider['status']}")


@providers.command("suspend")
@click.argument("provider_id")
@click.pass_context
def suspend(context: click.Context, provider_id: str) -> None:
    """Stop disclosing to PROVIDER_ID: from the next order on, its disclosures are held."""
    _set_status(context, provider_id, ProviderStatus.SUSPENDED)


@providers.command("activate")
@click.argument("provider_id")
@click.pass_context
def activate(context: click.Context, provider_id: str) -> None:
    """Disclose to PROVIDER_ID again; what was held meanwhile waits for `disclosures release`."""
    _set_status(context, provider_id, ProviderStatus.ACTIVE)


@providers.command("list")
@json_option
@click.pass_context
def list_(context: click.Context, as_json: bool) -> None:
    """List registered providers."""
    result = call(context, "disclosure", ListProviders())
    emit(result, as_json, ["provider_id", "name", "country", "status", "created_at", "created_by"])


@providers.command("show")
@click.argument("provider_id")
@json_option
@click.pass_context
def show(context: click.Context, provider_id: str, as_json: bool) -> None:
    """Everything the registry keeps on PROVIDER_ID, with who changed it last and when."""
    emit_record(call(context, "disclosure", build(ShowProvider, provider_id=provider_id)), as_json)


@providers.command("credentials")
@click.argument("provider_id")
@management_options
@click.pass_context
def credentials(
    context: click.Context,
    provider_id: str,
    management_url: str,
    management_user: str,
    management_password: str,
) -> None:
    """Create or rotate PROVIDER_ID's RabbitMQ user and print its AMQP URL, once.

    The disclosure service confirms the provider is registered, names its user and where it
    connects, and records the request in its audit log; then this command, as RabbitMQ's
    administrator (RABBITMQ_MANAGEMENT_USER), makes the user and its queues. The user may read
    the provider's own queue and nothing else. Rotating closes the provider's open connections
    and makes the previous password useless.
    """
    # Imported here: RabbitMQ's rights come with FastStream, which the other commands of the
    # group need not wait for at start.
    from rekisteri.rabbitmq import issue_provider_login
    from shared.rabbitmq_admin import RabbitMQAdmin, RabbitMQAdminError

    command = build(IssueProviderCredentials, provider_id=provider_id)
    login = call(context, "disclosure", command)
    vhost = virtual_host(context.find_root().obj["rabbitmq_url"])
    address = URL(login["amqp_url"])
    if virtual_host(str(address)) != vhost:
        raise click.ClickException(
            f"the disclosure service tells providers to connect to virtual host "
            f"{virtual_host(str(address))}, but the register is in {vhost}: fix PROVIDER_AMQP_URL"
        )
    password = secrets.token_urlsafe(32)
    admin = RabbitMQAdmin(management_url, management_user, management_password)
    try:
        asyncio.run(
            issue_provider_login(
                admin, management_user, vhost, provider_id, login["username"], password
            )
        )
    except RabbitMQAdminError as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"RabbitMQ user {login['username']} may read queue disclosures.{provider_id} only. "
        "The URL below holds its password and is shown only this once: give it to the "
        "provider over a secure channel, with the CA certificate it is to trust "
        "(docs/providers.md).",
        err=True,
    )
    if address.scheme != "amqps":
        click.echo(
            "Warning: the URL is plain amqp://, without TLS: set PROVIDER_AMQP_URL to the "
            "broker's amqps:// address before giving it to a provider outside this host.",
            err=True,
        )
    click.echo(str(address.with_user(login["username"]).with_password(password)))
