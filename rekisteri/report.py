"""`rekisteri report`: everything the register holds on a person, from every service (Art. 15)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from rekisteri.client import OpsError
from rekisteri.output import build, call_each
from shared.contracts.erasure import ReportSubject
from shared.topology import SERVICES


@click.command()
@click.option("--email", required=True, help="The person's email (the services only hash it).")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write the report to this file instead of standard output.",
)
@click.pass_context
def report(context: click.Context, email: str, output: Path | None) -> None:
    """Everything held on a person, and who received it, as one JSON document.

    Every service answers for its own data; the request is recorded (who asked, when). Fails,
    with no report, when a service does not answer: a partial report would mislead.
    """
    answers = call_each(context, SERVICES, build(ReportSubject, email=email))
    failed = {s: a for s, a in answers.items() if isinstance(a, OpsError)}
    if failed:
        raise click.ClickException(
            "no report: " + "; ".join(f"{service}: {error}" for service, error in failed.items())
        )
    parts: dict[str, Any] = {service: dict(answer) for service, answer in answers.items()}
    subject = {part.pop("subject") for part in parts.values()}
    document = {
        "generated_at": datetime.now(UTC).isoformat(),
        "subject": subject.pop() if len(subject) == 1 else sorted(subject),
        "services": parts,
    }
    text = json.dumps(document, indent=2, ensure_ascii=False)
    if output is None:
        click.echo(text)
    else:
        output.write_text(text + "\n")
        click.echo(f"report written to {output}", err=True)
