"""`rekisteri`: operate the register over RabbitMQ; it never touches a service's database.

Every command exits 0 on success and 1 with a message on stderr when it fails. Each group of
commands lives in its own module and is added here.
"""

from __future__ import annotations

import logging

import click

from rekisteri.audit import audit
from rekisteri.consent import consent, marketing
from rekisteri.description import register_description
from rekisteri.disclosures import disclosures
from rekisteri.erasure import erasure
from rekisteri.operations import dlq, status
from rekisteri.providers import providers
from rekisteri.rabbitmq import rabbitmq
from rekisteri.report import report
from rekisteri.retention import retention
from rekisteri.tls import tls

DEFAULT_RABBITMQ_URL = "amqp://guest:guest@localhost:5672/"


@click.group()
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


for group in (
    providers,
    disclosures,
    erasure,
    report,
    consent,
    marketing,
    status,
    dlq,
    audit,
    rabbitmq,
    retention,
    register_description,
    tls,
):
    main.add_command(group)
