"""Consent as facts and a projection, decided without a broker or a database.

Every permission answer and every objection is kept as a fact (who, what, granted or not, when
it happened, the wording shown, where, the event that said so): the proof GDPR Art. 7(1) asks
for. A person's current state is a projection of their facts: for each permission and for the
objection, the fact that happened last wins, ties broken by event id. The same facts give the
same state in whatever order they arrived, so a late or repeated event can never overwrite a
newer answer.

An objection to direct marketing (Art. 21) is its own kind of fact: permissions do not touch
it, so a later checkbox at checkout cannot lift it; only an explicit withdrawal does. While it
stands, the person may be contacted for nothing, whatever their permissions say.

Erasing a person deletes their facts and state. If an objection stood at that moment, a
suppression entry (keyed hash, since when) is kept and acts as a standing objection dated at the
erasure: a later checkout or permission change after the erasure does not make them
contactable; only their own withdrawal (`objected: false`) after it does.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from shared.contracts.consent import PURPOSES, ConsentSummary, Contact, Purpose
from shared.contracts.webshop import ConsentUpdated, MarketingObjection, OrderPlaced

CHECKOUT = "checkout"
SUPPRESSION = "suppression"
OBJECTION = "objection"
Topic = Literal["newsletter", "marketing", "objection"]
"""What a fact is about: one of the permissions, or the objection."""


class Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class Fact(Record):
    event_id: str
    occurred_at: datetime
    source: str
    # Set by the store when the fact is first recorded; not part of what the fact says.
    recorded_at: datetime | None = Field(default=None, exclude=True)

    @property
    def topic(self) -> Topic:
        raise NotImplementedError

    @property
    def value(self) -> bool:
        raise NotImplementedError

    @property
    def fact_id(self) -> str:
        """One fact per event and topic: the key that makes recording it idempotent."""
        return f"{self.event_id}:{self.topic}"

    @property
    def position(self) -> tuple[datetime, str]:
        """Where the fact stands in the person's history: when it happened, then its event id."""
        return (self.occurred_at, self.event_id)


class PermissionFact(Fact):
    kind: Literal["permission"] = "permission"
    purpose: Purpose
    granted: bool
    text_version: str
    order_id: str | None = None

    @property
    def topic(self) -> Topic:
        return self.purpose

    @property
    def value(self) -> bool:
        return self.granted


class ObjectionFact(Fact):
    kind: Literal["objection"] = "objection"
    objected: bool

    @property
    def topic(self) -> Topic:
        return OBJECTION

    @property
    def value(self) -> bool:
        return self.objected


AnyFact = Annotated[PermissionFact | ObjectionFact, Field(discriminator="kind")]
FACT = TypeAdapter[AnyFact](AnyFact)


def facts_from_checkout(event: OrderPlaced) -> list[PermissionFact]:
    """The buyer's answers to both checkboxes; recipients never get permissions."""
    consents = event.consents
    answers: dict[Purpose, bool | None] = {
        "newsletter": consents.newsletter,
        "marketing": consents.marketing,
    }
    return _permission_facts(
        event, answers, CHECKOUT, consents.text_version, order_id=event.order_id
    )


def facts_from_update(event: ConsentUpdated) -> list[PermissionFact]:
    """Only the permissions the event names: the other one stays as it was."""
    answers: dict[Purpose, bool | None] = {
        "newsletter": event.newsletter,
        "marketing": event.marketing,
    }
    return _permission_facts(event, answers, event.source, event.text_version)


def _permission_facts(
    event: OrderPlaced | ConsentUpdated,
    answers: dict[Purpose, bool | None],
    source: str,
    text_version: str,
    order_id: str | None = None,
) -> list[PermissionFact]:
    """A fact for each permission the event answers (an answer of None is no answer)."""
    return [
        PermissionFact(
            event_id=str(event.event_id),
            purpose=purpose,
            granted=granted,
            occurred_at=event.occurred_at,
            source=source,
            text_version=text_version,
            order_id=order_id,
        )
        for purpose, granted in answers.items()
        if granted is not None
    ]


def suppression(since: datetime) -> ObjectionFact:
    """An erased person's standing objection, from their suppression entry."""
    return ObjectionFact(event_id=SUPPRESSION, objected=True, occurred_at=since, source=SUPPRESSION)


def fact_from_objection(event: MarketingObjection) -> ObjectionFact:
    return ObjectionFact(
        event_id=str(event.event_id),
        objected=event.objected,
        occurred_at=event.occurred_at,
        source=event.source,
    )


class ConsentState(Record):
    """The deciding fact of each permission and of the objection; absent: never said."""

    permissions: dict[Purpose, PermissionFact] = Field(default_factory=dict)
    objection: ObjectionFact | None = None

    @property
    def objected(self) -> bool:
        return self.objection is not None and self.objection.objected

    @property
    def may_contact(self) -> list[Purpose]:
        """The purposes the person may be contacted for now: permission, and no objection."""
        if self.objected:
            return []
        return [p for p in PURPOSES if p in self.permissions and self.permissions[p].granted]

    def summary(self) -> ConsentSummary:
        return ConsentSummary(
            newsletter=_granted(self.permissions.get("newsletter")),
            marketing=_granted(self.permissions.get("marketing")),
            objected=self.objected,
            may_contact=self.may_contact,
        )


def _granted(fact: PermissionFact | None) -> bool | None:
    return None if fact is None else fact.granted


def _latest(facts: Iterable[AnyFact]) -> dict[Topic, AnyFact]:
    latest: dict[Topic, AnyFact] = {}
    for fact in facts:
        current = latest.get(fact.topic)
        if current is None or fact.position > current.position:
            latest[fact.topic] = fact
    return latest


def project(facts: Iterable[AnyFact]) -> ConsentState:
    """The current state: per permission and for the objection, the latest fact wins."""
    latest = _latest(facts)
    objection = latest.pop(OBJECTION, None)
    return ConsentState(
        permissions={
            fact.purpose: fact for fact in latest.values() if isinstance(fact, PermissionFact)
        },
        objection=objection if isinstance(objection, ObjectionFact) else None,
    )


class Change(Record):
    """One line of a person's consent history: what a fact changed, from what to what."""

    what: Topic
    from_: bool | None = Field(serialization_alias="from")
    to: bool
    occurred_at: datetime
    recorded_at: datetime | None
    source: str
    text_version: str | None
    event_id: str


def history(facts: Iterable[AnyFact]) -> list[Change]:
    """Every fact in the order things happened, each with the value it replaced.

    `from` is the value before in the order of occurrence rather than of arrival, so a late
    event lands in its place and the history reads the same however the events were delivered.
    A fact that repeats the value before it (a renewed answer, under newer wording) stays in.
    """
    unique = {fact.fact_id: fact for fact in facts}.values()
    changes: list[Change] = []
    before: dict[Topic, bool] = {}
    for fact in sorted(unique, key=lambda f: (*f.position, f.topic)):
        changes.append(
            Change(
                what=fact.topic,
                from_=before.get(fact.topic),
                to=fact.value,
                occurred_at=fact.occurred_at,
                recorded_at=fact.recorded_at,
                source=fact.source,
                text_version=fact.text_version if isinstance(fact, PermissionFact) else None,
                event_id=fact.event_id,
            )
        )
        before[fact.topic] = fact.value
    return changes


class Person(Record):
    """What the store holds of one person: the projection and what was last announced."""

    subject: str
    state: ConsentState
    version: int
    """How many facts the projection was built from; grows with every fact recorded."""
    announced: ConsentSummary = Field(default_factory=ConsentSummary)
    """The summary last published as `consent.changed`; nothing known at first."""
    contact: Contact | None = None
    """From the latest order; absent for a person known only from consent events."""

    @property
    def changed(self) -> bool:
        return self.state.summary() != self.announced
