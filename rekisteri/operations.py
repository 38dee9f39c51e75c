"""`rekisteri status` and `rekisteri dlq`: what the queues hold and repairing dead letters.

Each service answers for its own queues (routing key `<service>.runtime`), so a service that
does not answer shows up as such rather than as an empty queue.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import click

from rekisteri.output import ask_every_service, build, emit, json_option
from rekisteri.retention import load_policy
from shared.contracts.runtime import (
    DeadLetterId,
    ListDeadLetters,
    PurgeDeadLetters,
    ReplayDeadLetters,
    ReportStatus,
)
from shared.retention_policy import Category, finnish_date


@click.command()
@json_option
@click.pass_context
def status(context: click.Context, as_json: bool) -> None:
    """Each queue's depth and consumers; flags queues nobody consumes, silent services, and
    services whose identity keys differ (by fingerprint: the keys themselves never leave them).

    Exits 1 when a service does not answer, a work queue has no consumer, or the identity keys
    differ. Warns (on standard error, exit status unchanged) of dead letters that have waited
    RETENTION_DEAD_LETTER_WARN_DAYS: the daily sweep deletes them at RETENTION_DEAD_LETTER_DAYS.
    """
    dead_letters = load_policy()[Category.DEAD_LETTER]
    today = finnish_date(datetime.now(UTC))
    answers, silent = ask_every_service(context, ReportStatus())
    rows, keys = _queues_and_keys(answers)
    waiting = []
    for row in rows:
        row["attention"] = "NO CONSUMER" if row["kind"] == "work" and row["consumers"] == 0 else ""
        if row["kind"] == "dead-letter" and row["messages"]:
            row["attention"] = "DEAD LETTERS"
            oldest = row.get("oldest_at")
            if oldest and dead_letters.warned(datetime.fromisoformat(oldest), today):
                days = (today - finnish_date(datetime.fromisoformat(oldest))).days
                row["attention"] = f"DEAD LETTERS, OLDEST {days} DAYS"
                waiting.append(row["queue"])
    emit(rows, as_json, ["service", "queue", "kind", "messages", "consumers", "attention"])
    if waiting and dead_letters.warn_after is not None:
        click.echo(
            f"dead letters waiting {dead_letters.warn_after.describe('en')} or more: "
            f"{', '.join(waiting)}; look at them (`rekisteri dlq list`): they are deleted "
            f"{dead_letters.describe('en')['rule']}",
            err=True,
        )
    services_by_key = _services_by_key(keys)
    if len(services_by_key) == 1 and not as_json:
        [(key, services)] = services_by_key.items()
        click.echo(f"identity key fingerprint {key}: {', '.join(services)}")
    unconsumed = [row["queue"] for row in rows if row["attention"] == "NO CONSUMER"]
    problems = [f"not answering: {', '.join(silent)}"] if silent else []
    problems += [f"no consumer: {', '.join(unconsumed)}"] if unconsumed else []
    if len(services_by_key) > 1:
        # Services with different keys give one person different subject hashes: an erasure
        # or a report by email misses what the others hold.
        problems.append(
            "identity keys differ ("
            + "; ".join(f"{key}: {', '.join(names)}" for key, names in services_by_key.items())
            + "): every service must run with the same IDENTITY_HASH_KEY"
        )
    if problems:
        click.echo("; ".join(problems), err=True)
        sys.exit(1)


def _queues_and_keys(answers: list[Any]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Each service's queues as rows (with its key's fingerprint), and each fingerprint.

    A service of a version before fingerprints answers with its queues only: its rows come
    through, and it has no fingerprint to compare.
    """
    rows: list[dict[str, Any]] = []
    keys: dict[str, str] = {}
    for answer in answers:
        if "result" not in answer:
            rows.append(answer)
            continue
        service, reported = answer["service"], answer["result"]
        keys[service] = reported["identity_key"]
        rows += [
            {"service": service, **queue, "identity_key": reported["identity_key"]}
            for queue in reported["queues"]
        ]
    return rows, keys


def _services_by_key(keys: dict[str, str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for service, key in keys.items():
        grouped.setdefault(key, []).append(service)
    return grouped


@click.group()
def dlq() -> None:
    """Dead-letter queues: messages the register could not handle, and disclosures a provider
    rejected (`dead-letter.disclosures.<provider>`), with the reason."""


queue_option = click.option(
    "--queue",
    default=None,
    help="Only this queue: the dead-letter queue or its source (`disclosures.<provider>` for "
    "what that provider rejected).",
)


@dlq.command("list")
@queue_option
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000))
@json_option
@click.pass_context
def list_(context: click.Context, queue: str | None, limit: int, as_json: bool) -> None:
    """Dead letters: id, reason, routing key, when; personal data masked."""
    rows, _ = ask_every_service(context, build(ListDeadLetters, queue=queue, limit=limit))
    emit(rows, as_json, ["id", "source_queue", "routing_key", "rejected_at", "reason", "preview"])


@dlq.command("replay")
@click.argument("ids", nargs=-1)
@click.option("--all", "replay_all", is_flag=True, help="Every dead letter (of --queue).")
@queue_option
@click.pass_context
def replay(
    context: click.Context, ids: tuple[DeadLetterId, ...], replay_all: bool, queue: str | None
) -> None:
    """Send dead letters (by id, or --all) back to the queue they failed in; a provider's, only
    what the broker dead-lettered from that provider's queue."""
    if bool(ids) == replay_all:
        raise click.UsageError("name the dead letters to replay by id, or use --all")
    command = build(ReplayDeadLetters, ids=None if replay_all else list(ids), queue=queue)
    rows, silent = ask_every_service(context, command)
    replayed = [row for row in rows if isinstance(row, str)]
    click.echo(f"replayed {len(replayed)} dead letter(s)")
    missing = set(ids) - set(replayed)
    if missing or silent:
        if missing:
            click.echo(f"not found: {', '.join(sorted(missing))}", err=True)
        sys.exit(1)


@dlq.command("purge")
@queue_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def purge(context: click.Context, queue: str | None, yes: bool) -> None:
    """Delete dead letters for good (all of them, or those of --queue)."""
    scope = f"queue {queue}" if queue else "every dead-letter queue"
    if not yes:
        click.confirm(f"Delete every message in {scope}? This cannot be undone", abort=True)
    rows, silent = ask_every_service(context, build(PurgeDeadLetters, queue=queue))
    purged = sum(row["result"] for row in rows if isinstance(row, dict) and "result" in row)
    click.echo(f"purged {purged} dead letter(s)")
    if silent:
        sys.exit(1)
