"""The permission table of docs/security.md, generated from shared/permissions.py.

    make security-doc                               # or:
    .venv/bin/python -m tools.security_doc

Only the part between the two markers is generated; the prose around it is written by hand.
tests/unit/test_security_doc.py fails while the committed part differs from `render()`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from shared.permissions import Party, TopicPermissions, parties

DOCUMENT = Path(__file__).resolve().parents[1] / "docs" / "security.md"
BEGIN = "<!-- BEGIN GENERATED: permission table (make security-doc) -->"
END = "<!-- END GENERATED: permission table -->"
USERS = {
    "service": "`{name}` (after `RABBITMQ_USER_PREFIX`, default none)",
    "web shop": "`{name}` (after `RABBITMQ_USER_PREFIX`)",
    "staff": "`{name}` (after `RABBITMQ_USER_PREFIX`), one per staff member",
    "provider": "`PROVIDER_USER_PREFIX` + its id (`provider-{name}`), one per provider",
}


def _resources(names: frozenset[str]) -> str:
    return ", ".join(f"`{name}`" for name in sorted(names)) or "nothing"


def _regex(pattern: str) -> str:
    """In a table cell, even inside a code span, `|` must be escaped (GitHub renders it plain)."""
    return "`" + pattern.replace("|", "\\|") + "`"


def _party(party: Party) -> str:
    title = f"the {party.name} service" if party.kind == "service" else party.kind
    rights = party.permissions
    return "\n".join(
        [
            f"### {title}",
            "",
            f"User {USERS[party.kind].format(name=party.name)}. {party.reason}",
            "",
            "| right | on | regular expression |",
            "| --- | --- | --- |",
            f"| configure | {_resources(party.configure)} | {_regex(rights.configure)} |",
            f"| write | {_resources(party.write)} | {_regex(rights.write)} |",
            f"| read | {_resources(party.read)} | {_regex(rights.read)} |",
            *(_topics(party, topics) for topics in party.topic_permissions),
        ]
    )


def _topics(party: Party, topics: TopicPermissions) -> str:
    """A topic permission as two rows: the routing keys it publishes with, the keys it binds."""
    on = topics.exchange
    write = frozenset(key for exchange, key in party.topic_write if exchange == on)
    read = frozenset(key for exchange, key in party.topic_read if exchange == on)
    return "\n".join(
        [
            f"| publish on `{on}` | {_resources(write)} | {_regex(topics.write)} |",
            f"| bind to `{on}` | {_resources(read)} | {_regex(topics.read)} |",
        ]
    )


def render() -> str:
    """The generated part, markers included."""
    sections = "\n\n".join(_party(party) for party in parties())
    return f"{BEGIN}\n\n{sections}\n\n{END}"


def update(document: str) -> str:
    """`document` with its generated part replaced by `render()`."""
    before, found, rest = document.partition(BEGIN)
    _, ended, after = rest.partition(END)
    if not (found and ended):
        raise SystemExit(f"{DOCUMENT} lacks the markers {BEGIN!r} and {END!r}")
    return before + render() + after


def main() -> None:
    DOCUMENT.write_text(update(DOCUMENT.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"updated the permission table in {DOCUMENT}", file=sys.stderr)


if __name__ == "__main__":
    main()
