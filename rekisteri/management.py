"""What commands that act as RabbitMQ's administrator share, without importing the code that
does it: their management API options, and the virtual host of the register's AMQP URL."""

from __future__ import annotations

import click
from yarl import URL

from rekisteri.output import stacked

# (option, default, its help before the variable's name, whether --help shows the default)
_MANAGEMENT_OPTIONS = (
    ("url", "http://localhost:15672", "", True),
    ("user", "guest", "An administrator. ", True),
    ("password", "guest", "Its password; give it in the environment. ", False),
)

management_options = stacked(
    *(
        click.option(
            f"--management-{part}",
            envvar=f"RABBITMQ_MANAGEMENT_{part.upper()}",
            default=default,
            show_default=show_default,
            help=f"{text}[env: RABBITMQ_MANAGEMENT_{part.upper()}]",
        )
        for part, default, text, show_default in _MANAGEMENT_OPTIONS
    )
)
"""`--management-url`, `--management-user` and `--management-password`, each also taken from
its `RABBITMQ_MANAGEMENT_*` variable."""


def virtual_host(amqp_url: str) -> str:
    """The virtual host of an AMQP URL, as the AMQP client reads it (`/` when it names none)."""
    path = URL(amqp_url).path
    return "/" if path in ("", "/") else path[1:]
