"""`rekisteri consent` and `rekisteri marketing`: permissions, objections and who may be contacted."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import click

from rekisteri.client import OpsClient
from rekisteri.output import build, call, json_option, print_table, with_client
from shared.contracts.consent import PURPOSES, Contact, ExportAudience, ShowConsent

SERVICE = "consent"
CSV_COLUMNS = tuple(Contact.model_fields)
HISTORY_COLUMNS = ("what", "change", "occurred", "recorded", "source", "wording", "event_id")


def _moment(iso: str | None) -> str:
    return "" if iso is None else datetime.fromisoformat(iso).isoformat(timespec="seconds")


def _word(what: str, value: bool | None) -> str:
    if what == "objection":
        return {None: "none", True: "objects", False: "withdrawn"}[value]
    return {None: "not asked", True: "granted", False: "not granted"}[value]


@click.group()
def consent() -> None:
    """Buyers' marketing permissions and objections."""


@consent.command("show")
@click.option("--email", required=True, help="The person's email address.")
@json_option
@click.pass_context
def show(context: click.Context, email: str, as_json: bool) -> None:
    """A person's current permissions and objection, and their history (the proof of consent)."""
    report = call(context, SERVICE, build(ShowConsent, email=email))
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    elif not report["history"] and report["contact"] is None:
        click.echo("Nothing is recorded for this email.")
    else:
        _print_report(report)


def _print_report(report: dict[str, Any]) -> None:
    contact = report["contact"]
    name = f"{contact['first_name']} {contact['last_name']}" if contact else "no order yet"
    click.echo(f"buyer         {name}")
    for purpose in PURPOSES:
        permission = report["permissions"].get(purpose)
        line = _word(purpose, None if permission is None else permission["granted"])
        if permission is not None:
            line += (
                f" since {_moment(permission['occurred_at'])} ({permission['source']}, "
                f"wording {permission['text_version']})"
            )
        click.echo(f"{purpose:<13} {line}")
    objection = report["objection"]
    line = _word("objection", None if objection is None else objection["objected"])
    if objection is not None:
        line += f" since {_moment(objection['occurred_at'])} ({objection['source']})"
    click.echo(f"{'objection':<13} {line}")
    lists = ", ".join(report["in_audience"]) or "none"
    if report["may_contact"] and contact is None:
        lists += " (no name is known until they order)"
    click.echo(f"{'in exports':<13} {lists}")
    click.echo()
    print_table(
        [
            {
                "what": change["what"],
                "change": f"{_word(change['what'], change['from'])} → "
                f"{_word(change['what'], change['to'])}",
                "occurred": _moment(change["occurred_at"]),
                "recorded": _moment(change["recorded_at"]),
                "source": change["source"],
                "wording": change["text_version"],
                "event_id": change["event_id"],
            }
            for change in report["history"]
        ],
        HISTORY_COLUMNS,
    )


@click.group()
def marketing() -> None:
    """Who may be contacted for bulletins and marketing."""


@marketing.command("audience")
@click.option(
    "--purpose",
    type=click.Choice(PURPOSES),
    required=True,
    help="newsletter (bulletins) or marketing (marketing messages).",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the CSV to this file, complete or not at all, instead of to stdout.",
)
@click.pass_context
def audience(context: click.Context, purpose: str, output: Path | None) -> None:
    """Everyone who may be contacted for PURPOSE now, as CSV: email, first name, last name.

    That is every buyer who has given the permission, has not objected to direct marketing
    and has not been erased. The list is read at this moment: export it right before use.
    """
    command = build(ExportAudience, purpose=purpose)
    with _destination(output) as file:
        written = with_client(context, lambda client: _export(client, command, file))
    where = f" to {output}" if output else ""
    click.echo(f"{written} people may be contacted for {purpose}; written{where}", err=True)


FORMULA_STARTS = "=+-@\t\r"
# Where a spreadsheet may start a new cell when it opens the file: our comma; the semicolon,
# the list separator of Finnish (and most European) Excel; tab and pipe, which import dialogs
# offer; line breaks. Quoting every field is not enough: a spreadsheet splitting on `;` ignores
# quotes around `"Aino;=HYPERLINK(...)"` and finds a cell starting with `=`.
_CELL_STARTS = ",;\t|\r\n"
# A cell start, then the spaces and quotes a spreadsheet skips, then a formula character.
_FORMULA_CELL = re.compile(
    rf"(?P<start>^|[{re.escape(_CELL_STARTS)}])(?P<skipped>[ \"]*)"
    rf"(?=[{re.escape(FORMULA_STARTS)}])"
)


def spreadsheet_safe(value: str) -> str:
    """A value no spreadsheet will run, whichever delimiter it picks: names come from the web
    shop's customers, and a cell starting with `=` (`=HYPERLINK(...)`) is a formula when the
    file is opened. Each place a cell could start with a formula character gets a `'` before
    that character, as OWASP advises against CSV injection."""
    return _FORMULA_CELL.sub(r"\g<start>\g<skipped>'", value)


async def _export(client: OpsClient, command: ExportAudience, file: TextIO) -> int:
    """Write each page as it arrives: memory stays flat however large the audience."""
    writer = csv.writer(file, quoting=csv.QUOTE_ALL)
    written = 0
    with contextlib.ExitStack() as stack:
        progress = None
        async for page in client.stream(SERVICE, command):
            if page.sequence == 0:
                writer.writerow(CSV_COLUMNS)
                if page.total is not None and sys.stderr.isatty():
                    progress = stack.enter_context(
                        click.progressbar(
                            length=page.total, label=f"exporting {command.purpose}", file=sys.stderr
                        )
                    )
            writer.writerows(
                [spreadsheet_safe(row[column]) for column in CSV_COLUMNS] for row in page.rows
            )
            written += len(page.rows)
            if progress is not None:
                progress.update(len(page.rows))
    return written


@contextlib.contextmanager
def _destination(output: Path | None) -> Iterator[TextIO]:
    """Stdout, or a temporary file beside `output` that replaces it only once complete.

    A broken-off export thus never leaves a file that looks whole. The file is created
    readable by its owner only: it holds personal data.
    """
    if output is None:
        yield sys.stdout
        return
    handle, temporary = tempfile.mkstemp(
        dir=output.parent, prefix=f".{output.name}.", suffix=".part"
    )
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        Path(temporary).replace(output)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
