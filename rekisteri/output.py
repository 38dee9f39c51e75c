"""What every `rekisteri` command shares: sending a command and showing the result."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import BaseModel, ValidationError

from rekisteri.client import OpsClient, OpsError
from shared.topology_names import RUNTIME_SUFFIX, SERVICES, ops_runtime_routing_key

T = TypeVar("T")


def with_client(context: click.Context, work: Callable[[OpsClient], Awaitable[T]]) -> T:
    """Run `work` with a connected client; a failure ends the tool with 1 and the reason."""
    settings = context.find_root().obj

    async def session() -> T:
        async with OpsClient(settings["rabbitmq_url"], settings["timeout"]) as client:
            return await work(client)

    try:
        return asyncio.run(session())
    except OpsError as error:
        raise click.ClickException(str(error)) from None


def call(context: click.Context, service: str, command: BaseModel) -> Any:
    """Send `command` to `service` and return its result; a failure ends the tool with 1."""
    return with_client(context, lambda client: client.request(service, command))


def call_each(
    context: click.Context, services: Sequence[str], command: BaseModel
) -> dict[str, Any | OpsError]:
    """Send `command` to every service at once; each gets its result or why it failed.

    Only a broker that cannot be reached at all ends the tool.
    """

    async def ask_all(client: OpsClient) -> dict[str, Any | OpsError]:
        async def ask(service: str) -> Any | OpsError:
            try:
                return await client.request(service, command)
            except OpsError as error:
                return error

        answers = await asyncio.gather(*(ask(service) for service in services))
        return dict(zip(services, answers, strict=True))

    return with_client(context, ask_all)


def call_every_runtime(context: click.Context, command: BaseModel) -> dict[str, Any | OpsError]:
    """A runtime command (status, dead letters, audit, retention) to every service at once;
    each service's name gets its result or why it failed."""
    targets = [ops_runtime_routing_key(service) for service in SERVICES]
    answers = call_each(context, targets, command)
    return {target.removesuffix(RUNTIME_SUFFIX): answer for target, answer in answers.items()}


def ask_every_service(context: click.Context, command: BaseModel) -> tuple[list[Any], list[str]]:
    """A runtime command to every service: their answers flattened, and who did not answer.

    Each row of a service's answer gets its `service`; a service that does not answer is named
    on standard error.
    """
    rows: list[Any] = []
    silent: list[str] = []
    for service, answer in call_every_runtime(context, command).items():
        if isinstance(answer, OpsError):
            silent.append(service)
            click.echo(f"{service}: {answer}", err=True)
        elif isinstance(answer, list):
            rows.extend(
                {"service": service, **row} if isinstance(row, dict) else row for row in answer
            )
        else:
            rows.append({"service": service, "result": answer})
    return rows, silent


def build(model: type[BaseModel], **fields: Any) -> BaseModel:
    """Validate arguments with the same contract the service will apply."""
    try:
        return model(**fields)
    except ValidationError as error:
        # Imported only here: shared.messaging brings FastStream, which costs every command
        # a third of a second at start, and only a refused argument needs its wording.
        from shared.messaging import describe_validation_error

        raise click.UsageError(describe_validation_error(error)) from None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(part) for part in value)
    return str(value)


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [
        max([len(column), *(len(line[i]) for line in cells)]) for i, column in enumerate(columns)
    ]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for line in cells:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


def _print_json(result: Any) -> None:
    click.echo(json.dumps(result, indent=2, ensure_ascii=False))


def emit(result: Any, as_json: bool, columns: Sequence[str]) -> None:
    """Print a list of records as a table, or as JSON for scripts."""
    if as_json:
        _print_json(result)
    elif not result:
        click.echo("(none)")
    else:
        print_table(result, columns)


def emit_record(record: dict[str, Any], as_json: bool) -> None:
    """Print one record as `field: value` lines, or as JSON for scripts."""
    if as_json:
        _print_json(record)
        return
    width = max(len(field) for field in record)
    for field, value in record.items():
        click.echo(f"{field.ljust(width)}  {_cell(value)}")


def stacked(*options: Callable[[T], T]) -> Callable[[T], T]:
    """Several options as one decorator; `--help` lists them in the order given."""

    def decorate(command: T) -> T:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def newest_first_option(most: int) -> Callable[[T], T]:
    """`--limit N`: the newest N entries (100 unless told), at most `most`."""
    return click.option(
        "--limit",
        default=100,
        show_default=True,
        type=click.IntRange(1, most),
        help="Newest first.",
    )


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def output_option(what: str) -> Callable[[T], T]:
    """`--output FILE`: where `write_document` writes `what` instead of standard output."""
    return click.option(
        "--output",
        type=click.Path(dir_okay=False, writable=True, path_type=Path),
        default=None,
        help=f"Write {what} to this file instead of standard output.",
    )


def write_document(text: str, output: Path | None, what: str) -> None:
    """`text` on standard output, or in the file `output` with a line on standard error that
    says `what` was written there."""
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"{what} written to {output}", err=True)
