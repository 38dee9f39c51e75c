"""Where the tests find RabbitMQ and MongoDB.

In order: `RABBITMQ_URL` / `MONGODB_URL` when set; else containers started with testcontainers
when a Docker engine answers; else RabbitMQ on localhost and the embedded store. Under CI
(`CI=true`) a RabbitMQ that cannot be reached fails the run; elsewhere its tests are skipped.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import pytest

from tests.e2e.rabbitmq import Broker

DEFAULT_RABBITMQ_URL = "amqp://guest:guest@localhost:5672/"
DEFAULT_MANAGEMENT_URL = "http://localhost:15672"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def docker_engine_answers() -> bool:
    try:
        import docker  # installed with testcontainers

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "localhost", parts.port or 5672), timeout=3
        ):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def docker_available() -> bool:
    return docker_engine_answers()


@pytest.fixture(scope="session")
def rabbitmq(docker_available: bool) -> Iterator[Broker]:
    """The broker the end-to-end tests use, with its management API."""
    url = os.environ.get("RABBITMQ_URL")
    management_url = os.environ.get("RABBITMQ_MANAGEMENT_URL", DEFAULT_MANAGEMENT_URL)
    container = None
    if url is None and docker_available:
        from testcontainers.rabbitmq import RabbitMqContainer

        container = RabbitMqContainer("rabbitmq:3.13-management").with_exposed_ports(5672, 15672)
        container.start()
        host = container.get_container_host_ip()
        url = f"amqp://guest:guest@{host}:{container.get_exposed_port(5672)}/"
        management_url = f"http://{host}:{container.get_exposed_port(15672)}"
    url = url or DEFAULT_RABBITMQ_URL
    if not _reachable(url):
        message = (
            f"RabbitMQ does not answer at {urlsplit(url).hostname}:{urlsplit(url).port or 5672}"
        )
        if in_ci():
            pytest.fail(f"{message}; CI needs it (start it with `rabbitmq-server -detached`)")
        pytest.skip(message)
    try:
        yield Broker(url, management_url)
    finally:
        if container is not None:
            container.stop()


@pytest.fixture(scope="session")
def mongodb_url(docker_available: bool) -> Iterator[str | None]:
    """A real MongoDB when one is configured or can be started; None means the embedded store."""
    url = os.environ.get("MONGODB_URL")
    if url is not None or not docker_available:
        yield url
        return
    from testcontainers.mongodb import MongoDbContainer

    with MongoDbContainer("mongo:8") as container:
        yield container.get_connection_url()


@pytest.fixture
async def vhost_url(rabbitmq: Broker) -> AsyncIterator[str]:
    """An AMQP URL into a virtual host of this test's own, deleted afterwards."""
    async with rabbitmq.fresh_vhost() as url:
        yield url
