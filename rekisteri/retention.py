"""`rekisteri retention`: the retention policy, per category of data (shared/retention_policy.py),
and what the services' daily sweeps would delete on a given day (shared/retention_sweep.py).

The policy `show` prints is read from the tool's own environment (`RETENTION_*`): the services
must run with the same settings (docs/configuration.md). `preview` asks the services, which
apply their own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import click

from rekisteri.client import OpsError
from rekisteri.output import call_every_runtime, print_table
from shared.contracts.runtime import PreviewRetention
from shared.retention_policy import (
    LANGUAGES,
    Category,
    Language,
    Retention,
    RetentionPolicy,
    finnish_date,
    policy_from_environment,
)

T = TypeVar("T")


def load_policy() -> RetentionPolicy:
    """The policy of the environment; a wrong setting ends the tool with 1, naming it."""
    try:
        return policy_from_environment()
    except ValueError as error:
        raise click.ClickException(str(error)) from None


def policy_row(retention: Retention, language: Language) -> dict[str, Any]:
    """One category as `retention show --json` gives it."""
    texts = retention.describe(language)
    return {
        "category": str(retention.category),
        "what": texts["what"],
        "period": retention.period.as_json(),
        "period_text": texts["period"],
        "starts": texts["starts"],
        "rule": texts["rule"],
        "at_end": texts["at_end"],
        "basis": texts["basis"],
        "setting": retention.setting,
        "warn_after": retention.warn_after.as_json() if retention.warn_after else None,
    }


def language_option(default: Language, help: str = "fi or en.") -> Callable[[T], T]:
    """`--language`: which of the policy's languages texts are shown in."""
    return click.option(
        "--language", type=click.Choice(LANGUAGES), default=default, show_default=True, help=help
    )


@click.group()
def retention() -> None:
    """How long each category of data is kept, and what then happens to it."""


@retention.command("show")
@language_option("en")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def show(language: str, as_json: bool) -> None:
    """The policy: per category its period, what starts it, what happens at its end, why.

    The periods come from the RETENTION_* settings this tool runs with (docs/retention.md);
    the services must run with the same.
    """
    rows = [policy_row(r, cast("Language", language)) for r in load_policy()]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for row in rows:
        click.echo(f"{row['category']}: {row['what']}")
        lines = [
            ("period", row["period_text"]),
            ("starts", row["starts"]),
            ("then", row["at_end"]),
            ("basis", row["basis"]),
            ("setting", row["setting"] or "(fixed by law)"),
        ]
        for label, text in lines:
            click.echo(f"  {label.ljust(8)}{text}")
        click.echo()


@retention.command("preview")
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="The day of the sweep, YYYY-MM-DD (default: today).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON: an object from category to count."
)
@click.pass_context
def preview(context: click.Context, as_of: datetime | None, as_json: bool) -> None:
    """How many records of each category the services' daily sweeps would delete on that day,
    of what they hold now; nothing is deleted (held disclosures: cancelled).

    Each service counts its own (a buyer known to both the orders and the consent service
    counts in each); the counts are summed. Fails, with no preview, when a service does not
    answer: a partial count would mislead.
    """
    day = as_of.date() if as_of is not None else finnish_date(datetime.now(UTC))
    answers = call_every_runtime(context, PreviewRetention(as_of=day))
    failed = {service: a for service, a in answers.items() if isinstance(a, OpsError)}
    if failed:
        raise click.ClickException(
            "no preview: " + "; ".join(f"{service}: {error}" for service, error in failed.items())
        )
    totals = dict.fromkeys((str(category) for category in Category), 0)
    by_service: dict[str, list[str]] = {category: [] for category in totals}
    for service, counts in answers.items():
        for category, count in counts.items():
            totals[category] = totals.get(category, 0) + count
            if count:
                by_service.setdefault(category, []).append(f"{service} {count}")
    if as_json:
        click.echo(json.dumps(totals, indent=2))
        return
    click.echo(f"a sweep on {day.isoformat()} would delete:")
    rows = [
        {"category": category, "records": count, "services": by_service.get(category, [])}
        for category, count in totals.items()
    ]
    print_table(rows, ["category", "records", "services"])
