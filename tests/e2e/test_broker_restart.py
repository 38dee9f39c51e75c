"""RabbitMQ stopped and started during a burst: every service comes back by itself.

This test stops the broker for everyone on it, so it runs under CI (where the broker is the
run's own) or when BROKER_RESTART_TESTS=1 says the broker may be restarted; it needs
`rabbitmqctl` on this machine (RABBITMQ_NODENAME picks the node, e.g. a second one started
for the purpose).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
import urllib.request
from urllib.error import HTTPError, URLError

import pytest

from tests.conftest import in_ci
from tests.e2e.harness import QueueReader, Register, ServiceProcess, WebShop, rekisteri
from tests.factories import item, order_placed

BEFORE, DURING_RECOVERY = 400, 100


def _rabbitmqctl(*arguments: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *arguments], check=True, capture_output=True, timeout=120)


def _ready_status(service: ServiceProcess) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{service.port}/ready", timeout=5) as answer:
            return int(answer.status)
    except HTTPError as error:
        return error.code
    except URLError:
        return 0


def _wait_for_readiness(register: Register, status: int, within: float = 60) -> None:
    deadline = time.monotonic() + within
    pending = list(register.services.values())
    while pending:
        pending = [s for s in pending if _ready_status(s) != status]
        if pending and time.monotonic() > deadline:
            names = ", ".join(s.name for s in pending)
            raise AssertionError(f"readiness never became {status} for {names}")
        time.sleep(0.2)


@pytest.fixture
def broker_control() -> None:
    if not in_ci() and os.environ.get("BROKER_RESTART_TESTS") != "1":
        pytest.skip("restarts the broker for everyone on it: set BROKER_RESTART_TESTS=1")
    if shutil.which("rabbitmqctl") is None:
        if in_ci():
            pytest.fail("the broker-restart test needs rabbitmqctl on this machine")
        pytest.skip("rabbitmqctl is not on this machine")


@pytest.mark.service_errors_expected
async def test_services_reconnect_and_consume_again_after_a_broker_restart(
    broker_control: None, register: Register, vhost_url: str, staff_url: str, webshop_url: str
) -> None:
    added = rekisteri(staff_url, "providers", "add", "spa-oy", "--name", "Spa", "--country", "FI")
    assert added.returncode == 0, added.stderr
    orders = [order_placed(items=[item("spa-oy")]) for _ in range(BEFORE + DURING_RECOVERY)]
    async with WebShop(webshop_url) as shop:
        for order in orders[:BEFORE]:
            await shop.publish("order.placed", order, message_id=order["event_id"])

    await asyncio.to_thread(_rabbitmqctl, "stop_app")
    try:
        await asyncio.to_thread(_wait_for_readiness, register, 503)
    finally:
        await asyncio.to_thread(_rabbitmqctl, "start_app")
        await asyncio.to_thread(_rabbitmqctl, "await_startup")
    await asyncio.to_thread(_wait_for_readiness, register, 200)

    async with WebShop(webshop_url) as shop, QueueReader(vhost_url) as provider:
        for order in orders[BEFORE:]:
            await shop.publish("order.placed", order, message_id=order["event_id"])
        seen: dict[str, set[str]] = {}
        assert provider.channel is not None
        queue = await provider.channel.get_queue("disclosures.spa-oy")
        async with asyncio.timeout(90), queue.iterator() as messages:
            async for message in messages:
                await message.ack()
                seen.setdefault(json.loads(message.body)["order_id"], set()).add(
                    str(message.message_id)
                )
                if len(seen) == len(orders):
                    break
    assert all(len(ids) == 1 for ids in seen.values())

    # No service was restarted: the same processes consumed again.
    assert all(
        s.process is not None and s.process.poll() is None for s in register.services.values()
    )
    status = rekisteri(staff_url, "status")
    assert status.returncode == 0, status.stdout + status.stderr
