"""Consent as facts and a projection, decided without a broker or a database.

Every permission answer is kept as a fact (who, what, granted or not, when it happened, the
wording shown, the event that said so): the proof GDPR Art. 7(1) asks for. A person's current
permissions are a projection of their facts: per purpose, the fact that happened last wins,
ties broken by event id. The same facts give the same state in whatever order they arrived,
so a late or repeated event can never overwrite a newer answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from shared.contracts.webshop import OrderPlaced

Purpose = Literal["newsletter", "marketing"]
PURPOSES: tuple[Purpose, ...] = ("newsletter", "marketing")
CHECKOUT = "checkout"


class Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class ConsentFact(Record):
    event_id: str
    purpose: Purpose
    granted: bool
    occurred_at: datetime
    source: str
    text_version: str
    order_id: str | None = None

    @property
    def fact_id(self) -> str:
        """One fact per event and purpose: the key that makes recording it idempotent."""
        return f"{self.event_id}:{self.purpose}"

    def supersedes(self, other: ConsentFact) -> bool:
        return (self.occurred_at, self.event_id) > (other.occurred_at, other.event_id)


class Permission(Record):
    granted: bool
    occurred_at: datetime
    event_id: str
    source: str
    text_version: str


class Contact(Record):
    """What a marketing export needs to address the buyer."""

    email: str
    first_name: str
    last_name: str


def facts_from_checkout(event: OrderPlaced) -> list[ConsentFact]:
    consents = event.consents
    answers: dict[Purpose, bool] = {
        "newsletter": consents.newsletter,
        "marketing": consents.marketing,
    }
    return [
        ConsentFact(
            event_id=str(event.event_id),
            purpose=purpose,
            granted=granted,
            occurred_at=event.occurred_at,
            source=CHECKOUT,
            text_version=consents.text_version,
            order_id=event.order_id,
        )
        for purpose, granted in answers.items()
    ]


def project(facts: Iterable[ConsentFact]) -> dict[Purpose, Permission]:
    """The current permission per purpose: the latest fact wins; no fact, no permission."""
    latest: dict[Purpose, ConsentFact] = {}
    for fact in facts:
        current = latest.get(fact.purpose)
        if current is None or fact.supersedes(current):
            latest[fact.purpose] = fact
    return {
        purpose: Permission(
            granted=fact.granted,
            occurred_at=fact.occurred_at,
            event_id=fact.event_id,
            source=fact.source,
            text_version=fact.text_version,
        )
        for purpose, fact in latest.items()
    }
