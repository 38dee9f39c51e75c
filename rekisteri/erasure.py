"""`rekisteri erasure`: erasure requests."""

from __future__ import annotations

import click

from rekisteri.output import call, emit, json_option
from shared.contracts.erasure import ListErasureRequests


@click.group()
def erasure() -> None:
    """Erasure requests."""


@erasure.command("list")
@click.option("--open", "open_only", is_flag=True, help="Only requests not completed yet.")
@json_option
@click.pass_context
def list_(context: click.Context, open_only: bool, as_json: bool) -> None:
    """List erasure requests."""
    result = call(context, "erasure", ListErasureRequests(open_only=open_only))
    emit(result, as_json, ["_id", "status", "reason", "received_at", "deadline"])
