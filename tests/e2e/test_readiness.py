"""A service says it is ready only once it consumes its queues, and which identity key it has.

The web shop starts publishing when the register's services are ready; an order published to
its exchange before a service's queue exists would never reach that service. A service with
another identity key than the rest would not find anyone the others know.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import pytest

from shared import topology
from shared.topology import SERVICES
from tests.e2e.harness import IDENTITY_HASH_KEY, Register, rekisteri


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


@dataclass
class Rekeyed(Register):
    keys: dict[str, str] = field(default_factory=dict)
    """An identity key of their own for the services named."""

    def environment(self, name: str, port: int) -> dict[str, str]:
        env = super().environment(name, port)
        env["IDENTITY_HASH_KEY"] = self.keys.get(name, env["IDENTITY_HASH_KEY"])
        return env


def ready(register: Register, service: str) -> dict[str, object]:
    port = register.services[service].port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as answer:
        return dict(json.loads(answer.read()))


def test_status_warns_when_a_service_has_another_identity_key(
    vhost_url: str, tmp_path: Path
) -> None:
    register = Rekeyed(dict.fromkeys(topology.SERVICES, vhost_url), tmp_path)
    register.start()
    try:
        fingerprints = {service: ready(register, service)["identity_key"] for service in SERVICES}
        assert len(set(fingerprints.values())) == 1, fingerprints
        same = rekisteri(vhost_url, "status")
        assert same.returncode == 0, same.stdout + same.stderr
        assert f"identity key fingerprint {fingerprints['orders']}:" in same.stdout

        other_key = "another-identity-key-of-at-least-32-bytes"
        register.stop(["orders"])
        register.keys["orders"] = other_key
        register.start(["orders"])
        other = ready(register, "orders")["identity_key"]
        assert other != fingerprints["consent"]

        differ = rekisteri(vhost_url, "status")
        assert differ.returncode == 1
        assert "identity keys differ" in differ.stderr and "IDENTITY_HASH_KEY" in differ.stderr
        assert f"{other}: orders" in differ.stderr
        assert f"{fingerprints['consent']}: consent, disclosure, erasure" in differ.stderr
        for key in (IDENTITY_HASH_KEY, other_key):
            assert key not in differ.stdout + differ.stderr, "a fingerprint, never the key"
    finally:
        assert set(register.stop().values()) == {0}
