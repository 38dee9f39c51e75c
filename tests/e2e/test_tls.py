"""Over real TLS: the parties outside the register's host connect to the broker's AMQPS port,
trusting the register's CA and nothing else.

The TLS endpoint is `tls_proxy.TlsTerminator` in front of the test broker, serving the
certificate that the operators' own one-command generator (`rekisteri tls trial-certificates`)
made for this test session. Staff's `rekisteri`, the web shop and a provider all connect
through it; the disclosure service tells providers its address (`PROVIDER_AMQP_URL`).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika
import pytest
from aio_pika.exceptions import AMQPConnectionError

from tests.e2e.harness import REPOSITORY, Logins, Register, WebShop, rekisteri
from tests.e2e.rabbitmq import Broker
from tests.e2e.tls_proxy import TlsTerminator
from tests.factories import item, order_placed

HOSTNAMES = ("localhost", "127.0.0.1")
HANDSHAKE_TIMEOUT = 10.0


def trial_certificates(folder: Path) -> Path:
    """What an operator gets from `rekisteri tls trial-certificates`, run as they would."""
    made = subprocess.run(
        [sys.executable, "-m", "rekisteri", "tls", "trial-certificates", "--out", str(folder)]
        + [argument for name in HOSTNAMES for argument in ("--hostname", name)],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    assert "NOT FOR PRODUCTION" in made.stderr
    assert (folder / "server.key").stat().st_mode & 0o777 == 0o600
    return folder


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trial_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def untrusted_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA made the same way, which did not sign the broker's certificate."""
    return trial_certificates(tmp_path_factory.mktemp("other-tls")) / "ca.pem"


@pytest.fixture(scope="session")
def tls_port(certificates: Path, rabbitmq: Broker) -> Iterator[int]:
    broker = urlsplit(rabbitmq.url)
    upstream = (broker.hostname or "localhost", broker.port or 5672)
    with TlsTerminator(certificates / "server.pem", certificates / "server.key", upstream) as tls:
        yield tls.port


@pytest.fixture
def disclosure_env(tls_port: int, vhost_url: str) -> dict[str, str]:
    """The address the disclosure service gives providers: the AMQPS port, by the name in the
    certificate."""
    return {"PROVIDER_AMQP_URL": f"amqps://localhost:{tls_port}{urlsplit(vhost_url).path}"}


def at_port(url: str, port: int, *, tls: bool = True, cafile: Path | None = None) -> str:
    """The same login and virtual host at `port`, as `amqps://` (or, `tls` false, plain
    `amqp://`); `cafile` for clients that take their CA in the URL, as `rekisteri` and the
    services do."""
    parts = urlsplit(url)
    netloc = f"{parts.username}:{parts.password}@localhost:{port}"
    query = f"cafile={quote(str(cafile))}" if cafile else ""
    return urlunsplit(("amqps" if tls else "amqp", netloc, parts.path, query, ""))


async def test_a_provider_consumes_its_queue_over_tls_trusting_the_registers_ca(
    register: Register,
    staff_url: str,
    webshop_url: str,
    certificates: Path,
    tls_port: int,
) -> None:
    ca = certificates / "ca.pem"
    staff = at_port(staff_url, tls_port, cafile=ca)
    added = rekisteri(staff, "providers", "add", "spa-oy", "--name", "Kylpylä", "--country", "FI")
    assert added.returncode == 0, added.stderr
    issued = rekisteri(staff, "providers", "credentials", "spa-oy")
    assert issued.returncode == 0, issued.stderr
    provider_url = issued.stdout.strip()
    parts = urlsplit(provider_url)
    assert (parts.scheme, parts.hostname, parts.port) == ("amqps", "localhost", tls_port)
    assert "plain amqp://" not in issued.stderr

    order = order_placed(items=[item("spa-oy", "p-spa")])
    async with WebShop(at_port(webshop_url, tls_port, cafile=ca)) as shop:
        await shop.publish("order.placed", order, message_id=order["event_id"])

    # As docs/providers.md tells a provider to connect: the URL it was given, trusting the CA.
    context = ssl.create_default_context(cafile=str(ca))
    connection = await aio_pika.connect_robust(provider_url, ssl_context=context)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue("disclosures.spa-oy")
        async with asyncio.timeout(20), queue.iterator() as messages:
            async for message in messages:
                async with message.process():
                    disclosure = json.loads(message.body)
                break
    assert (disclosure["type"], disclosure["order_id"]) == ("disclosure", order["order_id"])


async def refusal(url: str, context: ssl.SSLContext | None = None) -> BaseException:
    """How connecting fails; the test fails if it does not."""
    try:
        async with asyncio.timeout(HANDSHAKE_TIMEOUT):
            connection = await aio_pika.connect(url, ssl_context=context)
    except (AMQPConnectionError, OSError, TimeoutError) as error:
        return error
    await connection.close()
    raise AssertionError(f"connected to {urlsplit(url).scheme}://...:{urlsplit(url).port}")


def causes(error: BaseException) -> str:
    """The error and every error it came from, as text."""
    found: list[str] = []
    current: BaseException | None = error
    while current is not None and len(found) < 10:
        found.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return " <- ".join(found)


async def test_the_tls_port_refuses_plain_amqp_and_a_client_that_trusts_another_ca(
    logins: Logins, certificates: Path, untrusted_ca: Path, tls_port: int
) -> None:
    shop = at_port(logins.webshop, tls_port)
    # Trusting the register's CA, the web shop gets in (so what follows fails for TLS alone).
    trusted = ssl.create_default_context(cafile=str(certificates / "ca.pem"))
    connection = await aio_pika.connect(shop, ssl_context=trusted)
    await connection.close()

    # Plain AMQP to the TLS port: no AMQP answer comes back, nothing reaches the broker.
    await refusal(at_port(logins.webshop, tls_port, tls=False))
    # TLS, trusting a CA that did not sign the broker's certificate.
    untrusting = ssl.create_default_context(cafile=str(untrusted_ca))
    error = await refusal(shop, untrusting)
    assert "CERTIFICATE_VERIFY_FAILED" in causes(error), causes(error)
    # The system's CAs, which a client given no CA trusts, do not vouch for it either.
    error = await refusal(shop)
    assert "CERTIFICATE_VERIFY_FAILED" in causes(error), causes(error)


def test_rekisteri_refuses_a_broker_whose_certificate_its_ca_does_not_vouch_for(
    register: Register, staff_url: str, certificates: Path, untrusted_ca: Path, tls_port: int
) -> None:
    trusting = at_port(staff_url, tls_port, cafile=certificates / "ca.pem")
    assert rekisteri(trusting, "providers", "list").returncode == 0
    done = rekisteri(at_port(staff_url, tls_port, cafile=untrusted_ca), "providers", "list")
    assert done.returncode == 1
    assert "cannot reach RabbitMQ" in done.stderr and "CERTIFICATE_VERIFY_FAILED" in done.stderr
    password = urlsplit(staff_url).password
    assert password and password not in done.stderr
