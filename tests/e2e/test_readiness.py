"""A service says it is ready only once it consumes its queues.

The web shop starts publishing when the register's services are ready; an order published to
its exchange before a service's queue exists would never reach that service.
"""

from __future__ import annotations

from pathlib import Path

import aio_pika
import pytest

from shared import topology
from tests.e2e.harness import Register


@pytest.mark.parametrize("service", ["orders", "consent", "disclosure"])
async def test_a_service_consumes_its_queues_as_soon_as_it_reports_ready(
    service: str, vhost_url: str, tmp_path: Path
) -> None:
    register = Register(dict.fromkeys(topology.SERVICES, vhost_url), tmp_path)
    register.start([service])  # returns as soon as /ready answers 200
    try:
        connection = await aio_pika.connect(vhost_url)
        async with connection:
            channel = await connection.channel()
            for name in (
                topology.order_placed_subscription(service).queue_name,
                topology.ops_subscription(service).queue_name,
            ):
                declared = await channel.declare_queue(name, passive=True)
                assert declared.declaration_result.consumer_count == 1, f"nobody consumes {name}"
    finally:
        assert register.stop() == {service: 0}
