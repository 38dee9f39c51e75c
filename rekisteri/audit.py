"""`rekisteri audit list`: who did what, when and on whom, from every service's audit log."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import click

from rekisteri.output import ask_every_service, build, emit, json_option, newest_first_option
from shared.contracts.runtime import ListAuditEntries

SUBJECT_SHOWN = 12
COLUMNS = ["at", "service", "actor", "command", "outcome", "subject", "targets", "count"]


def _moment(value: str | None) -> datetime | None:
    """ISO 8601; without an offset it is this machine's local time."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 date or time (2026-11-24 or 2026-11-24T18:05+02:00)",
            param_hint="--since",
        ) from None
    return moment if moment.tzinfo is not None else moment.astimezone()


def _row(entry: dict[str, Any]) -> dict[str, Any]:
    subject = entry.get("subject")
    return {
        **entry,
        "subject": subject[:SUBJECT_SHOWN] if subject else "",
        "targets": [f"{key}={value}" for key, value in entry["targets"].items()],
    }


@click.group()
def audit() -> None:
    """The services' records of every command staff sent them."""


@audit.command("list")
@click.option("--since", default=None, help="Only entries from then on (ISO 8601).")
@click.option("--actor", default=None, help="Only commands sent by this RabbitMQ user.")
@newest_first_option(100_000)
@json_option
@click.pass_context
def list_(
    context: click.Context, since: str | None, actor: str | None, limit: int, as_json: bool
) -> None:
    """Commands sent to any service: when, by whom, what, on whom (subject hash), how it went.

    Reading the audit log is itself recorded in it. Exits 1 when a service does not answer:
    the list then lacks its entries.
    """
    command = build(ListAuditEntries, since=_moment(since), actor=actor, limit=limit)
    entries, silent = ask_every_service(context, command)
    entries = sorted(entries, key=lambda entry: datetime.fromisoformat(entry["at"]), reverse=True)
    entries = entries[:limit]
    emit(entries if as_json else [_row(entry) for entry in entries], as_json, COLUMNS)
    if silent:
        click.echo(f"incomplete: no answer from {', '.join(silent)}", err=True)
        sys.exit(1)
