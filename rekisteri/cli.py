"""`rekisteri`: operate the register over RabbitMQ; it never touches a service's database.

Every command exits 0 on success and 1 with a message on stderr when it fails. Each group of
commands lives in its own module, named in `COMMANDS` and imported only when it is run: an
operator waits for a command's start, and most modules bring dependencies (FastStream, the
cryptography library, the retention policy's settings) that the others do not need.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass

import click

DEFAULT_RABBITMQ_URL = "amqp://guest:guest@localhost:5672/"


@dataclass(frozen=True)
class LazyCommand:
    """Where a command is defined, and its help's first sentence for `rekisteri --help` (a test
    holds it equal to the command's own)."""

    module: str
    attribute: str
    short_help: str


COMMANDS = {
    "audit": LazyCommand(
        "rekisteri.audit", "audit", "The services' records of every command staff sent them."
    ),
    "consent": LazyCommand(
        "rekisteri.consent", "consent", "Buyers' marketing permissions and objections."
    ),
    "disclosures": LazyCommand(
        "rekisteri.disclosures",
        "disclosures",
        "Who received whose data, and the disclosures held back.",
    ),
    "dlq": LazyCommand(
        "rekisteri.operations",
        "dlq",
        "Dead-letter queues: messages the register could not handle, and disclosures a "
        "provider rejected (`dead-letter.disclosures.<provider>`), with the reason.",
    ),
    "erasure": LazyCommand(
        "rekisteri.erasure",
        "erasure",
        "Erasure requests: erase a person everywhere, follow it, get the receipt.",
    ),
    "marketing": LazyCommand(
        "rekisteri.consent", "marketing", "Who may be contacted for bulletins and marketing."
    ),
    "providers": LazyCommand(
        "rekisteri.providers", "providers", "The service providers that receive their orders' data."
    ),
    "rabbitmq": LazyCommand(
        "rekisteri.rabbitmq",
        "rabbitmq",
        "The register's RabbitMQ users and their rights (needs the management API).",
    ),
    "register-description": LazyCommand(
        "rekisteri.description",
        "register_description",
        "The register description (rekisteriseloste / privacy notice) of the register as it runs.",
    ),
    "report": LazyCommand(
        "rekisteri.report",
        "report",
        "Everything held on a person, and who received it, as one JSON document: the data each "
        "service holds, and why (purposes with their legal bases), for how long (each category "
        "with the day it ends for them), from where (sources) and to whom (recipients by name).",
    ),
    "retention": LazyCommand(
        "rekisteri.retention",
        "retention",
        "How long each category of data is kept, and what then happens to it.",
    ),
    "status": LazyCommand(
        "rekisteri.operations",
        "status",
        "Each queue's depth and consumers; flags queues nobody consumes, silent services, and "
        "services whose identity keys differ (by fingerprint: the keys themselves never leave "
        "them).",
    ),
    "tls": LazyCommand(
        "rekisteri.tls",
        "tls",
        "TLS for the broker's listener that parties outside the host connect to.",
    ),
}


class LazyGroup(click.Group):
    """A group whose commands are imported when one is run or asked for its help; its own
    `--help` lists them from `COMMANDS` without importing any."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = COMMANDS.get(cmd_name)
        if where is None:
            return None
        command = getattr(importlib.import_module(where.module), where.attribute)
        assert isinstance(command, click.Command), f"{where} is not a click command"
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # As click lays out a group's commands, each help cut to the width left.
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [
            (name, click.Command(name, help=COMMANDS[name].short_help).get_short_help_str(limit))
            for name in self.list_commands(ctx)
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup)
@click.option(
    "--rabbitmq-url",
    envvar="RABBITMQ_URL",
    default=DEFAULT_RABBITMQ_URL,
    show_default=True,
    help="Broker to talk to; its user is who you act as. [env: RABBITMQ_URL]",
)
@click.option(
    "--timeout",
    envvar="REKISTERI_TIMEOUT",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds to wait for a reply, or for the next page of an export. [env: REKISTERI_TIMEOUT]",
)
@click.pass_context
def main(context: click.Context, rabbitmq_url: str, timeout: float) -> None:
    """Operate Kokemuskauppa's customer register."""
    # The AMQP client logs connection failures itself; the tool says what failed, once.
    for chatty in ("aio_pika", "aiormq"):
        logging.getLogger(chatty).setLevel(logging.CRITICAL)
    context.obj = {"rabbitmq_url": rabbitmq_url, "timeout": timeout}
