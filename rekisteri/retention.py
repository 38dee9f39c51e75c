"""`rekisteri retention`: the retention policy, per category of data (shared/retention_policy.py).

The policy is read from the tool's own environment (`RETENTION_*`): the services must run with
the same settings (docs/configuration.md).
"""

from __future__ import annotations

import json
from typing import Any, cast

import click

from shared.retention_policy import (
    LANGUAGES,
    Language,
    Retention,
    RetentionPolicy,
    policy_from_environment,
)


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


@click.group()
def retention() -> None:
    """How long each category of data is kept, and what then happens to it."""


@retention.command("show")
@click.option(
    "--language", type=click.Choice(LANGUAGES), default="en", show_default=True, help="fi or en."
)
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
