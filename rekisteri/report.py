"""`rekisteri report`: everything the register holds on a person, from every service, with the
purposes, retention, sources and recipients of it (GDPR Art. 15(1); rekisteri/access_report.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import click

from rekisteri.access_report import (
    purposes_section,
    recipients_section,
    retention_section,
    sources_section,
)
from rekisteri.client import OpsError
from rekisteri.output import build, call, call_each, output_option, write_document
from rekisteri.retention import language_option, load_policy
from shared.contracts.erasure import ReportSubject
from shared.contracts.orders import LookupPerson
from shared.contracts.providers import ListProviders
from shared.retention_policy import Language
from shared.topology_names import SERVICES


def person_options(command: click.Command) -> click.Command:
    """`--email`, or `--order` with `--role`: how staff name a person (see `named_person`)."""
    options = (
        click.option("--email", default=None, help="The person's email (only its hash is kept)."),
        click.option(
            "--order",
            "order_id",
            default=None,
            metavar="ORDER_ID",
            help="Name the person by an order they are on (with --role): for a gift-card "
            "recipient without an email.",
        ),
        click.option(
            "--role",
            type=click.Choice(["buyer", "recipient"]),
            default=None,
            help="With --order: the order's buyer or its recipient.",
        ),
    )
    for option in reversed(options):
        command = option(command)
    return command


def named_person(email: str | None, order_id: str | None, role: str | None) -> None:
    """Refuse anything but exactly one way of naming the person."""
    if (email is None) == (order_id is None and role is None):
        raise click.UsageError("give either --email, or --order with --role")
    if email is None and (order_id is None or role is None):
        raise click.UsageError("--order and --role go together")


@click.command()
@person_options
@language_option("en", help="The language of the purposes, retention and sources.")
@output_option("the report")
@click.pass_context
def report(
    context: click.Context,
    email: str | None,
    order_id: str | None,
    role: str | None,
    language: str,
    output: Path | None,
) -> None:
    """Everything held on a person, and who received it, as one JSON document: the data each
    service holds, and why (purposes with their legal bases), for how long (each category with
    the day it ends for them), from where (sources) and to whom (recipients by name).

    Name the person by --email, or by an order they are on (--order with --role): the orders
    service says who that is, and every service is then asked about them by their keyed hash.
    Every service answers for its own data; the request is recorded (who asked, when). Fails,
    with no report, when a service does not answer: a partial report would mislead. The
    periods are the RETENTION_* settings this tool runs with, which must be the services'.
    """
    named_person(email, order_id, role)
    policy = load_policy()
    if email is not None:
        command = build(ReportSubject, email=email)
    else:
        lookup = build(LookupPerson, order_id=order_id, role=role)
        command = ReportSubject(subject=call(context, "orders", lookup)["subject"])
    answers = call_each(context, SERVICES, command)
    failed = {s: a for s, a in answers.items() if isinstance(a, OpsError)}
    if failed:
        raise click.ClickException(
            "no report: " + "; ".join(f"{service}: {error}" for service, error in failed.items())
        )
    providers = call(context, "disclosure", ListProviders())
    parts: dict[str, Any] = {service: dict(answer) for service, answer in answers.items()}
    subject = {part.pop("subject") for part in parts.values()}
    now = datetime.now(UTC)
    document: dict[str, Any] = {
        "generated_at": now.isoformat(),
        "subject": subject.pop() if len(subject) == 1 else sorted(subject),
    }
    if order_id is not None:
        document["named_by"] = {"order_id": order_id, "role": role}
    chosen = cast("Language", language)
    retention = retention_section(parts, policy, now, chosen)
    document["purposes"] = purposes_section(retention, chosen)
    document["retention"] = retention
    document["sources"] = sources_section(parts, chosen)
    document["recipients"] = recipients_section(parts, providers)
    document["services"] = parts
    write_document(json.dumps(document, indent=2, ensure_ascii=False) + "\n", output, "report")
