"""The consent service's use cases."""

from __future__ import annotations

import logging

from services.consent.domain import Contact, facts_from_checkout, project
from services.consent.store import ConsentStore
from shared.contracts.webshop import OrderPlaced
from shared.identity import SubjectHasher

log = logging.getLogger(__name__)


class ConsentService:
    def __init__(self, store: ConsentStore, hasher: SubjectHasher) -> None:
        self._store = store
        self._hasher = hasher

    async def record_checkout(self, event: OrderPlaced) -> None:
        """The buyer's checkbox answers become facts; recipients never get permissions."""
        buyer = event.buyer
        subject = self._hasher(buyer.email)
        new = await self._store.append_facts(subject, facts_from_checkout(event))
        await self._store.save_contact(
            subject,
            Contact(email=buyer.email, first_name=buyer.first_name, last_name=buyer.last_name),
            as_of=event.occurred_at,
        )
        await self._refresh_permissions(subject)
        log.info(
            "checkout consents recorded",
            extra={"event_id": str(event.event_id), "subject": subject, "count": new},
        )

    async def _refresh_permissions(self, subject: str) -> None:
        facts = await self._store.facts_of(subject)
        await self._store.save_permissions(subject, project(facts), facts_seen=len(facts))
