"""Fixtures for end-to-end tests: a fresh virtual host, every party's RabbitMQ user in it, and
the four services running in it, each as its own user."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Logins, Register, provision
from tests.e2e.rabbitmq import Broker

STAFF = ("anna", "ben")


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
async def user_prefix(rabbitmq: Broker) -> AsyncIterator[str]:
    """A prefix of this test's own for every user it makes (RabbitMQ users are broker-wide)."""
    prefix = f"e2e-{uuid.uuid4().hex[:8]}-"
    try:
        yield prefix
    finally:
        await rabbitmq.delete_users(prefix)


@pytest.fixture
def provider_user_prefix(user_prefix: str) -> str:
    return user_prefix + "provider-"


@pytest.fixture
def logins(rabbitmq: Broker, vhost_url: str, user_prefix: str) -> Logins:
    """The services', the web shop's and staff members anna's and ben's users in the vhost."""
    return provision(rabbitmq, vhost_url, user_prefix, STAFF)


@pytest.fixture
def staff_url(logins: Logins) -> str:
    """`rekisteri`'s broker URL: staff member anna's user."""
    return logins.staff["anna"]


@pytest.fixture
def webshop_url(logins: Logins) -> str:
    return logins.webshop


@pytest.fixture(scope="session", autouse=True)
def staff_hold_the_administrator(rabbitmq: Broker) -> Iterator[None]:
    """Staff who issue providers' credentials (`rekisteri providers credentials`) have RabbitMQ's
    administrator in their environment; the services never do (harness.Register)."""
    admin_user, admin_password = rabbitmq.admin_credentials
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RABBITMQ_MANAGEMENT_URL", rabbitmq.management_url)
        patch.setenv("RABBITMQ_MANAGEMENT_USER", admin_user)
        patch.setenv("RABBITMQ_MANAGEMENT_PASSWORD", admin_password)
        yield


@pytest.fixture
def disclosure_env() -> dict[str, str]:
    """Settings the disclosure service gets besides the common ones (a test module may add)."""
    return {}


@pytest.fixture
def register(
    logins: Logins,
    tmp_path: Path,
    mongodb_url: str | None,
    rabbitmq: Broker,
    provider_user_prefix: str,
    disclosure_env: dict[str, str],
    request: pytest.FixtureRequest,
) -> Iterator[Register]:
    running = Register(
        logins.services,
        tmp_path / "data",
        mongodb_url,
        database_prefix=f"e2e_{uuid.uuid4().hex[:8]}_",
        service_env={
            # It names providers' users, and asks the management API whether it is an
            # administrator (in production); it makes no user.
            "disclosure": {
                "PROVIDER_USER_PREFIX": provider_user_prefix,
                "RABBITMQ_MANAGEMENT_URL": rabbitmq.management_url,
                **disclosure_env,
            }
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
