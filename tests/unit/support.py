"""What several unit-test modules build alike: the web shop's order as the services parse it,
with one identity key and one instant to reckon from; the disclosure service running with a
provider's queue listened to."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from faststream.rabbit import RabbitBroker

from services.disclosure.app import assemble as assemble_disclosure
from services.disclosure.settings import DisclosureSettings
from shared import topology
from shared.contracts.webshop import OrderPlaced
from shared.database import Database
from shared.identity import SubjectHasher
from tests.factories import order_placed
from tests.unit.test_erasure_services import listen
from tests.unit.test_services import in_memory, running

HASHER = SubjectHasher("test-key")
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def order_event(**overrides: Any) -> OrderPlaced:
    """`tests.factories.order_placed(**overrides)`, parsed as a service takes it."""
    return OrderPlaced.model_validate(order_placed(**overrides), strict=False)


@asynccontextmanager
async def disclosure_with_inbox(
    provider_id: str = "spa-oy",
) -> AsyncIterator[tuple[RabbitBroker, Database, list[dict[str, Any]]]]:
    """The disclosure service on the test broker, in memory, and everything published to the
    provider's queue (the provider is not registered: that is the test's to do)."""
    broker = RabbitBroker()
    inbox = listen(
        broker,
        topology.Subscription(
            topology.provider_queue_name(provider_id), topology.disclosures_exchange(), provider_id
        ),
    )
    async with running(in_memory(DisclosureSettings), assemble_disclosure, broker) as (b, db):
        yield b, db, inbox
