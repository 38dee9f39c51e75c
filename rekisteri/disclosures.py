"""`rekisteri disclosures`: the disclosure log, and the disclosures held back from providers."""

from __future__ import annotations

import click

from rekisteri.output import build, call, emit, json_option, newest_first_option
from shared.contracts.disclosure_ops import ListDisclosures, ListHeldDisclosures, ReleaseOrder


@click.group()
def disclosures() -> None:
    """Who received whose data, and the disclosures held back."""


@disclosures.command("held")
@json_option
@click.pass_context
def held(context: click.Context, as_json: bool) -> None:
    """List disclosures not sent, and why (the provider is unknown, suspended or outside the EEA)."""
    result = call(context, "disclosure", ListHeldDisclosures())
    emit(result, as_json, ["order_id", "provider_id", "status", "reason", "held_since"])


@disclosures.command("release")
@click.argument("order_id")
@click.pass_context
def release(context: click.Context, order_id: str) -> None:
    """Send ORDER_ID's held disclosures to those of its providers that may now receive them.

    Run it again safely: a disclosure is never sent twice.
    """
    outcome = call(context, "disclosure", build(ReleaseOrder, order_id=order_id))
    for provider_id in outcome["sent"]:
        click.echo(f"sent order {order_id}'s disclosure to {provider_id}")
    for still in outcome["held"]:
        click.echo(f"still held for {still['provider_id']}: {still['reason']}")
    if not outcome["sent"] and not outcome["held"]:
        click.echo(f"order {order_id} has nothing held to release")


@disclosures.command("list")
@click.option("--email", default=None, help="Whose data: the person's email (only hashed).")
@click.option("--provider", "provider_id", default=None, help="Which provider received it.")
@newest_first_option(10_000)
@json_option
@click.pass_context
def list_(
    context: click.Context, email: str | None, provider_id: str | None, limit: int, as_json: bool
) -> None:
    """Disclosures sent: who got a person's data (--email), or what a provider got (--provider)."""
    command = build(ListDisclosures, email=email, provider_id=provider_id, limit=limit)
    result = call(context, "disclosure", command)
    emit(result, as_json, ["sent_at", "provider_id", "order_id", "message_id", "fields"])
    if len(result) == limit and not as_json:
        click.echo(f"(the newest {limit}; --limit shows more)", err=True)
