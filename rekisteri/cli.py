"""`rekisteri`: register providers and inspect the register, over RabbitMQ only.

Every command exits 0 on success and 1 with a message on stderr when it fails.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

import click
from pydantic import BaseModel, ValidationError

from rekisteri.client import OpsClient, OpsError
from shared.contracts.ops import AddProvider, ListErasureRequests, ListProviders
from shared.messaging import describe_validation_error

DEFAULT_RABBITMQ_URL = "amqp://guest:guest@localhost:5672/"


def _call(context: click.Context, service: str, command: BaseModel) -> Any:
    settings = context.obj

    async def exchange() -> Any:
        async with OpsClient(settings["rabbitmq_url"], settings["timeout"]) as client:
            return await client.request(service, command)

    try:
        return asyncio.run(exchange())
    except OpsError as error:
        raise click.ClickException(str(error)) from None


def _command(model: type[BaseModel], **fields: Any) -> BaseModel:
    """Validate arguments with the same contract the service will apply."""
    try:
        return model(**fields)
    except ValidationError as error:
        raise click.UsageError(describe_validation_error(error)) from None


def _print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    cells = [
        [str(row.get(column) if row.get(column) is not None else "") for column in columns]
        for row in rows
    ]
    widths = [
        max([len(column), *(len(line[i]) for line in cells)]) for i, column in enumerate(columns)
    ]
    click.echo(
        "  ".join(
            column.upper().ljust(width) for column, width in zip(columns, widths, strict=True)
        )
    )
    for line in cells:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )


def _emit(result: Any, as_json: bool, columns: Sequence[str]) -> None:
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
    elif not result:
        click.echo("(none)")
    else:
        _print_table(result, columns)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


@click.group()
@click.option(
    "--rabbitmq-url",
    envvar="RABBITMQ_URL",
    default=DEFAULT_RABBITMQ_URL,
    show_default=True,
    help="Broker to talk to; its user is who you act as. [env: RABBITMQ_URL]",
)
@click.option(
    "--timeout",
    envvar="REKISTERI_TIMEOUT",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds to wait for a service's reply. [env: REKISTERI_TIMEOUT]",
)
@click.pass_context
def main(context: click.Context, rabbitmq_url: str, timeout: float) -> None:
    """Operate Kokemuskauppa's customer register."""
    # The AMQP client logs connection failures itself; the tool says what failed, once.
    for chatty in ("aio_pika", "aiormq"):
        logging.getLogger(chatty).setLevel(logging.CRITICAL)
    context.obj = {"rabbitmq_url": rabbitmq_url, "timeout": timeout}


@main.group()
def providers() -> None:
    """The service providers that receive their orders' data."""


@providers.command("add")
@click.argument("provider_id")
@click.option("--name", required=True, help="The provider's name.")
@click.option("--country", required=True, help="ISO 3166-1 alpha-2 code; must be in the EEA.")
@click.option("--contact-email", default=None, help="Where the provider's data contact is reached.")
@click.pass_context
def providers_add(
    context: click.Context, provider_id: str, name: str, country: str, contact_email: str | None
) -> None:
    """Register PROVIDER_ID (lower-case letters, digits, dashes) and create its queue."""
    command = _command(
        AddProvider,
        provider_id=provider_id,
        name=name,
        country=country.upper(),
        contact_email=contact_email,
    )
    provider = _call(context, "disclosure", command)
    click.echo(
        f"registered provider {provider['provider_id']} ({provider['name']}, {provider['country']}); "
        f"its data goes to queue disclosures.{provider['provider_id']}"
    )


@providers.command("list")
@json_option
@click.pass_context
def providers_list(context: click.Context, as_json: bool) -> None:
    """List registered providers."""
    result = _call(context, "disclosure", ListProviders())
    _emit(result, as_json, ["provider_id", "name", "country", "status", "created_at", "created_by"])


@main.group()
def erasure() -> None:
    """Erasure requests."""


@erasure.command("list")
@click.option("--open", "open_only", is_flag=True, help="Only requests not completed yet.")
@json_option
@click.pass_context
def erasure_list(context: click.Context, open_only: bool, as_json: bool) -> None:
    """List erasure requests."""
    result = _call(context, "erasure", ListErasureRequests(open_only=open_only))
    _emit(result, as_json, ["_id", "status", "reason", "received_at", "deadline"])


if __name__ == "__main__":
    sys.exit(main())
