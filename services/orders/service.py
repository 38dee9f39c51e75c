"""The orders service's use cases: what happens when an order arrives."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from services.orders.domain import order_from_event, profiles_from_order
from services.orders.store import OrdersStore
from shared.contracts.webshop import OrderPlaced
from shared.identity import SubjectHasher

log = logging.getLogger(__name__)


class OrdersService:
    def __init__(self, store: OrdersStore, hasher: SubjectHasher) -> None:
        self._store = store
        self._hasher = hasher

    async def record_order(self, event: OrderPlaced) -> None:
        """Keep the order in the buyer's history and both people's latest data; idempotent."""
        order = order_from_event(event, self._hasher, recorded_at=datetime.now(UTC))
        new = await self._store.add_order(order)
        # Profiles are updated even for a known order: a crash may have come between the writes.
        for profile in profiles_from_order(order):
            await self._store.update_profile(profile)
        log.info(
            "order recorded" if new else "order already recorded",
            extra={
                "order_id": order.order_id,
                "event_id": order.event_id,
                "subject": order.buyer_subject,
            },
        )
