"""What commands that act as RabbitMQ's administrator share, without importing the code that
does it: their management API options, and the virtual host of the register's AMQP URL."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click
from yarl import URL

Command = TypeVar("Command", bound=Callable[..., object])

# (option, default, its help before the variable's name, whether --help shows the default)
_MANAGEMENT_OPTIONS = (
    ("url", "http://localhost:15672", "", True),
    ("user", "guest", "An administrator. ", True),
    ("password", "guest", "Its password; give it in the environment. ", False),
)


def management_options(command: Command) -> Command:
    """`--management-url`, `--management-user` and `--management-password`, each also taken
    from its `RABBITMQ_MANAGEMENT_*` variable."""
    for part, default, text, show_default in reversed(_MANAGEMENT_OPTIONS):
        variable = f"RABBITMQ_MANAGEMENT_{part.upper()}"
        command = click.option(
            f"--management-{part}",
            envvar=variable,
            default=default,
            show_default=show_default,
            help=f"{text}[env: {variable}]",
        )(command)
    return command


def virtual_host(amqp_url: str) -> str:
    """The virtual host of an AMQP URL, as the AMQP client reads it (`/` when it names none)."""
    path = URL(amqp_url).path
    return "/" if path in ("", "/") else path[1:]
