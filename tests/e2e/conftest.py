"""Fixtures for end-to-end tests: a fresh virtual host and the four services running in it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Register
from tests.e2e.rabbitmq import Broker


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
async def provider_user_prefix(rabbitmq: Broker) -> AsyncIterator[str]:
    """A prefix of this test's own for provider users (RabbitMQ users are broker-wide)."""
    prefix = f"e2e-{uuid.uuid4().hex[:8]}-provider-"
    try:
        yield prefix
    finally:
        await rabbitmq.delete_users(prefix)


@pytest.fixture
def register(
    vhost_url: str,
    tmp_path: Path,
    mongodb_url: str | None,
    rabbitmq: Broker,
    provider_user_prefix: str,
    request: pytest.FixtureRequest,
) -> Iterator[Register]:
    running = Register(
        vhost_url,
        tmp_path / "data",
        mongodb_url,
        database_prefix=f"e2e_{uuid.uuid4().hex[:8]}_",
        extra_env={
            "RABBITMQ_MANAGEMENT_URL": rabbitmq.management_url,
            "PROVIDER_USER_PREFIX": provider_user_prefix,
        },
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()
        failed = getattr(request.node, "report_call", None)
        if failed is not None and failed.failed:
            # The services' own account of what happened, where the test's output shows it.
            print(f"--- service logs ---\n{running.logs()[-20000:]}")
        elif request.node.get_closest_marker("service_errors_expected") is None:
            errors = [line for line in running.logs().splitlines() if '"level":"error"' in line]
            assert not errors, "the services logged errors:\n" + "\n".join(errors[:20])
