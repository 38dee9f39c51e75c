"""`rekisteri rabbitmq provision`: the register's exchanges, queues and bindings, and the
RabbitMQ users of the services, the web shop and staff.

The one command that does not talk to the services: it makes what they log in with and find at
start, so it goes to RabbitMQ's management HTTP API with an administrator's credentials instead.
It declares the register's topology once (`shared.permissions.register_topology`), which the
services, without the rights to declare or bind it, only find. Each user gets exactly the rights
`shared.permissions` defines, in the register's own virtual host, and the topic permissions that
narrow which routing keys it may use on the topic exchanges.

Running it again changes no password unless told to: a password given in the environment
(`RABBITMQ_PASSWORD_<PARTY>`) is set as given; a user that exists and has none given keeps its
own; a user that does not exist gets a generated one; `--rotate PARTY` generates a new one and
closes the party's open connections. Generated passwords are printed once, to standard output,
as `.env` lines; nothing else is printed there, and they are stored nowhere.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import click

from rekisteri.management import management_options
from shared.permissions import (
    Party,
    Permissions,
    Topology,
    password_variable,
    provider_party,
    provider_topology,
    provisioned_parties,
    register_topology,
)
from shared.rabbitmq_admin import RabbitMQAdmin, RabbitMQAdminError, RabbitMQUnreachable

DEFAULT_VHOST = "register"
ALL = Permissions(".*", ".*", ".*")


@dataclass(frozen=True)
class Provisioned:
    party: Party
    user: str
    password: str | None
    """Set when it was generated here: the caller shows it once."""
    done: str


@click.group()
def rabbitmq() -> None:
    """The register's RabbitMQ users and their rights (needs the management API)."""


@rabbitmq.command("provision")
@click.option(
    "--vhost",
    envvar="RABBITMQ_VHOST",
    default=DEFAULT_VHOST,
    show_default=True,
    help="The register's virtual host; created if missing. [env: RABBITMQ_VHOST]",
)
@click.option(
    "--staff",
    multiple=True,
    metavar="NAME",
    help="A staff member to give a user (staff-NAME) of their own; repeat for several.",
)
@click.option(
    "--rotate",
    multiple=True,
    metavar="PARTY",
    help="Give PARTY (orders, webshop, staff-NAME ...) a new generated password and close its "
    "connections; repeat for several.",
)
@click.option(
    "--user-prefix",
    envvar="RABBITMQ_USER_PREFIX",
    default="",
    help="Put before every user name, for registers that share one broker. "
    "[env: RABBITMQ_USER_PREFIX]",
)
@management_options
@click.option(
    "--wait",
    default=0.0,
    type=click.FloatRange(min=0),
    help="Seconds to wait for the management API to answer (it starts after the broker).",
)
def provision(
    vhost: str,
    staff: tuple[str, ...],
    rotate: tuple[str, ...],
    user_prefix: str,
    management_url: str,
    management_user: str,
    management_password: str,
    wait: float,
) -> None:
    """Declare the register's exchanges, queues and bindings, and create or update every
    party's user with the rights of shared/permissions.py.

    Passwords come from RABBITMQ_PASSWORD_<PARTY> (RABBITMQ_PASSWORD_ORDERS,
    RABBITMQ_PASSWORD_STAFF_ANNA ...); a new user without one gets a generated password, printed
    once on standard output as a line for .env.
    """
    try:
        parties = provisioned_parties(dict.fromkeys(staff))
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--staff") from None
    names = {party.name for party in parties}
    for party in rotate:
        if party not in names:
            raise click.BadParameter(
                f"{party} is none of the parties provisioned here ({', '.join(sorted(names))})",
                param_hint="--rotate",
            )
    passwords = {
        party.name: os.environ[password_variable(party.name)]
        for party in parties
        if os.environ.get(password_variable(party.name))
    }
    if clash := sorted(set(rotate) & set(passwords)):
        raise click.UsageError(
            f"--rotate {clash[0]} would replace the password set in "
            f"{password_variable(clash[0])}: change that variable instead"
        )
    admin = RabbitMQAdmin(management_url, management_user, management_password)
    try:
        declared, results = asyncio.run(
            _provision(
                admin, management_user, vhost, user_prefix, parties, passwords, set(rotate), wait
            )
        )
    except RabbitMQAdminError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"virtual host {vhost}: {declared}", err=True)
    for result in results:
        click.echo(f"{result.user}: {result.done}", err=True)
    generated = [result for result in results if result.password is not None]
    if generated:
        click.echo(
            "Generated passwords follow, shown only this once: put them in .env or a secret "
            "store now.",
            err=True,
        )
    for result in generated:
        click.echo(f"{password_variable(result.party.name)}={result.password}")


async def _provision(
    admin: RabbitMQAdmin,
    management_user: str,
    vhost: str,
    user_prefix: str,
    parties: Sequence[Party],
    passwords: Mapping[str, str],
    rotate: set[str],
    wait: float,
) -> tuple[str, list[Provisioned]]:
    await _create_vhost(admin, vhost, wait)
    declared = await declare(admin, management_user, vhost, register_topology())
    results = []
    for party in parties:
        user = user_prefix + party.name
        generated = None
        if party.name in rotate:
            generated = secrets.token_urlsafe(32)
            await admin.put_user(user, generated)
            done = "new password (rotated)"
        elif party.name in passwords:
            await admin.put_user(user, passwords[party.name])
            done = f"password from {password_variable(party.name)}"
        elif not await admin.user_exists(user):
            generated = secrets.token_urlsafe(32)
            await admin.put_user(user, generated)
            done = "created with a generated password"
        else:
            done = "exists; password kept"
        await admin.set_permissions(vhost, user, party.permissions)
        for topics in party.topic_permissions:
            await admin.set_topic_permissions(vhost, user, topics)
        if party.name in rotate:
            await admin.close_connections(user)
        results.append(Provisioned(party, user, generated, f"{done}; {party.kind} rights set"))
    return declared, results


async def declare(
    admin: RabbitMQAdmin, management_user: str, vhost: str, topology: Topology
) -> str:
    """Declare the exchanges, queues and bindings in the virtual host, as the administrator;
    what exists as declared stays as it is. Says what was declared."""
    # Declaring through the management API takes the administrator's own rights in the vhost,
    # which RabbitMQ gives whoever creates it there; one made otherwise may lack them.
    if not await admin.has_permissions(vhost, management_user):
        await admin.set_permissions(vhost, management_user, ALL)
    for exchange in topology.exchanges:
        await admin.put_exchange(vhost, exchange)
    for queue in topology.queues:
        await admin.put_queue(vhost, queue)
    for binding in topology.bindings:
        await admin.bind(vhost, binding)
    return (
        f"{len(topology.exchanges)} exchanges, {len(topology.queues)} queues and "
        f"{len(topology.bindings)} bindings declared"
    )


async def _create_vhost(admin: RabbitMQAdmin, vhost: str, wait: float) -> None:
    deadline = time.monotonic() + wait
    while True:
        try:
            await admin.put_vhost(vhost)
            return
        except RabbitMQUnreachable:
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(1)


async def issue_provider_login(
    admin: RabbitMQAdmin,
    management_user: str,
    vhost: str,
    provider_id: str,
    username: str,
    password: str,
) -> None:
    """The provider's user with this password and the rights of its row of the table, its
    queue and its dead letters' queue, both bound; then its open connections closed, so that a
    rotation after a leak locks the old holder out at once."""
    await declare(admin, management_user, vhost, provider_topology(provider_id))
    await admin.put_user(username, password)
    await admin.set_permissions(vhost, username, provider_party(provider_id).permissions)
    await admin.close_connections(username)
