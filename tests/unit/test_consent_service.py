"""The consent service's handlers inside one process: FastStream's test broker and the embedded
store in memory, with an internal consumer of `consent.changed` and the tool's reply address."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from faststream.rabbit import RabbitBroker, RabbitQueue
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from services.consent import service as use_cases
from services.consent.app import assemble
from services.consent.domain import AnyFact, Person
from services.consent.settings import ConsentSettings
from services.consent.store import ConsentStore, open_store
from shared import topology
from shared.contracts.consent import ConsentChanged, ConsentSummary, ExportAudience, ShowConsent
from shared.contracts.ops import OpsPage, OpsReply
from shared.database import Database
from shared.identity import SubjectHasher
from tests.factories import consent_updated, marketing_objection, order_placed, person
from tests.strategies import EMAIL, Delivery, events, two_deliveries
from tests.unit.test_services import in_memory, running

HASH = SubjectHasher("unit-test-key")
REPLIES = "test-rekisteri-replies"


@dataclass
class Consent:
    broker: RabbitBroker
    database: Database
    changes: list[dict[str, Any]] = field(default_factory=list)
    pages: list[OpsPage] = field(default_factory=list)
    _store: ConsentStore | None = field(default=None, repr=False)

    async def deliver(self, routing_key: str, payload: dict[str, Any] | bytes) -> None:
        await self.broker.publish(
            payload if isinstance(payload, bytes) else json.dumps(payload).encode(),
            exchange=topology.webshop_exchange(),
            routing_key=routing_key,
            content_type="application/json",
            user_id="webshop",
        )

    async def command(self, command: BaseModel) -> OpsReply:
        reply = await self.broker.request(
            command.model_dump_json().encode(),
            exchange=topology.ops_exchange(),
            routing_key="consent",
            user_id="staff-anna",
        )
        return OpsReply.model_validate_json(reply.body)

    async def stream(self, command: BaseModel | bytes) -> list[OpsPage]:
        """Every page of the answer, as `rekisteri` would receive them at its reply address."""
        self.pages.clear()
        await self.broker.publish(
            command if isinstance(command, bytes) else command.model_dump_json().encode(),
            exchange=topology.ops_exchange(),
            routing_key=topology.ops_stream_routing_key("consent"),
            reply_to=REPLIES,
            correlation_id="export-1",
            user_id="staff-anna",
        )
        return list(self.pages)

    async def store(self) -> ConsentStore:
        """The service's store, as the service sees it, to look at what it keeps."""
        if self._store is None:
            self._store = await open_store(self.database)
        return self._store

    async def person(self, email: str) -> Person | None:
        return await (await self.store()).person(HASH(email))

    async def history(self, email: str) -> list[AnyFact]:
        return await (await self.store()).facts_of(HASH(email))

    async def suppressed_since(self, email: str) -> datetime | None:
        return await (await self.store()).suppressed_since(HASH(email))


@asynccontextmanager
async def consent_service() -> AsyncIterator[Consent]:
    broker = RabbitBroker()
    changes: list[dict[str, Any]] = []
    pages: list[OpsPage] = []

    @broker.subscriber(
        RabbitQueue("test.consent-changed", routing_key=topology.CONSENT_CHANGED),
        topology.register_events_exchange(),
    )
    async def internal_consumer(body: dict[str, Any]) -> None:
        changes.append(body)

    @broker.subscriber(RabbitQueue(REPLIES))
    async def rekisteri(body: dict[str, Any]) -> None:
        pages.append(OpsPage.model_validate(body))

    async with running(in_memory(ConsentSettings), assemble, broker) as (test_broker, database):
        yield Consent(test_broker, database, changes, pages)


@pytest.fixture
async def consent() -> AsyncIterator[Consent]:
    async with consent_service() as running_service:
        yield running_service


def checkout(email: str, first: str = "Aino", last: str = "Virtanen", **answers: Any) -> Delivery:
    return topology.ORDER_PLACED, order_placed(buyer=person(first, last, email), **answers)


async def test_the_buyers_answers_are_kept_and_never_the_recipients(consent: Consent) -> None:
    _, order = checkout(EMAIL, newsletter=False, marketing=True)
    await consent.deliver(topology.ORDER_PLACED, order)
    await consent.deliver(topology.ORDER_PLACED, order)
    buyer = await consent.person(EMAIL)
    assert buyer is not None
    assert buyer.state.permissions["newsletter"].granted is False
    assert buyer.state.permissions["marketing"].granted is True
    assert buyer.contact is not None and buyer.contact.email == EMAIL
    assert len(await consent.history(EMAIL)) == 2
    assert await consent.person(order["recipient"]["email"]) is None


async def test_consent_changed_is_published_once_per_real_change(consent: Consent) -> None:
    await consent.deliver(*checkout(EMAIL, newsletter=True, marketing=False))
    late = consent_updated(EMAIL, newsletter=True, marketing=False)
    await consent.deliver(topology.CONSENT_UPDATED, late)  # same answers again: no change
    objection = marketing_objection(EMAIL)
    await consent.deliver(topology.MARKETING_OBJECTION, objection)
    await consent.deliver(topology.MARKETING_OBJECTION, objection)  # redelivered
    assert [
        (c["newsletter"], c["marketing"], c["objected"], c["may_contact"]) for c in consent.changes
    ] == [
        (True, False, False, ["newsletter"]),
        (True, False, True, []),
    ]
    last = consent.changes[-1]
    assert last["subject"] == HASH(EMAIL) and last["event_id"] == objection["event_id"]
    assert last["version"] == 5  # two checkout facts, two updates, one objection
    assert "Virtanen" not in json.dumps(consent.changes) and EMAIL not in json.dumps(
        consent.changes
    )


async def test_a_stale_update_is_kept_as_history_but_changes_nothing(consent: Consent) -> None:
    await consent.deliver(*checkout(EMAIL, newsletter=True, marketing=True))
    newer = consent_updated(EMAIL, marketing=False)
    stale = consent_updated(EMAIL, marketing=True)
    stale["occurred_at"] = "2026-01-01T10:00:00+02:00"
    await consent.deliver(topology.CONSENT_UPDATED, newer)
    await consent.deliver(topology.CONSENT_UPDATED, stale)
    buyer = await consent.person(EMAIL)
    assert buyer is not None and buyer.state.permissions["marketing"].granted is False
    assert buyer.state.may_contact == ["newsletter"]
    assert len(await consent.history(EMAIL)) == 4


async def test_an_objection_from_a_stranger_is_kept_and_blocks_their_first_order(
    consent: Consent,
) -> None:
    await consent.deliver(topology.MARKETING_OBJECTION, marketing_objection(EMAIL))
    stranger = await consent.person(EMAIL)
    assert stranger is not None and stranger.state.objected is True
    await consent.deliver(*checkout(EMAIL, newsletter=True, marketing=True))
    assert [page.rows for page in await consent.stream(ExportAudience(purpose="marketing"))] == [
        [],
    ]


async def test_show_gives_the_state_and_the_history_with_from_and_to(consent: Consent) -> None:
    await consent.deliver(*checkout(EMAIL, newsletter=True, marketing=False))
    await consent.deliver(topology.CONSENT_UPDATED, consent_updated(EMAIL, marketing=True))
    reply = await consent.command(ShowConsent(email=EMAIL.upper()))
    assert reply.ok, reply.error
    report = reply.result
    assert report["contact"] == {"email": EMAIL, "first_name": "Aino", "last_name": "Virtanen"}
    assert report["permissions"]["marketing"]["granted"] is True
    assert report["permissions"]["marketing"]["source"] == "account-page"
    assert report["objection"] is None
    assert report["in_audience"] == ["newsletter", "marketing"]
    assert [(h["what"], h["from"], h["to"], h["source"]) for h in report["history"]][-1] == (
        "marketing",
        False,
        True,
        "account-page",
    )
    assert all(h["recorded_at"] for h in report["history"])


async def test_show_of_someone_unknown_says_nothing_is_recorded(consent: Consent) -> None:
    reply = await consent.command(ShowConsent(email="nobody@example.fi"))
    assert reply.ok and reply.result["history"] == [] and reply.result["contact"] is None


async def test_the_audience_is_exactly_who_may_be_contacted_now_in_pages(
    consent: Consent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(use_cases, "AUDIENCE_PAGE_SIZE", 2)
    for number in range(5):
        await consent.deliver(*checkout(f"yes{number}@example.fi", str(number), newsletter=True))
    await consent.deliver(*checkout("no@example.fi", newsletter=False, marketing=True))
    await consent.deliver(*checkout("objects@example.fi", newsletter=True))
    await consent.deliver(topology.MARKETING_OBJECTION, marketing_objection("objects@example.fi"))
    # Known only from the account page: no name to address them by, so not in the list yet.
    await consent.deliver(
        topology.CONSENT_UPDATED, consent_updated("account@example.fi", newsletter=True)
    )

    pages = await consent.stream(ExportAudience(purpose="newsletter"))
    assert [page.sequence for page in pages] == [0, 1, 2, 3]
    assert pages[0].total == 5 and all(page.total is None for page in pages[1:])
    assert [page.final for page in pages] == [False, False, False, True]
    rows = [row for page in pages for row in page.rows]
    assert sorted(row["email"] for row in rows) == [f"yes{n}@example.fi" for n in range(5)]
    assert set(rows[0]) == {"email", "first_name", "last_name"}

    marketing = await consent.stream(ExportAudience(purpose="marketing"))
    assert [row["email"] for page in marketing for row in page.rows] == ["no@example.fi"]


async def test_a_broken_stream_command_gets_a_final_page_with_the_reason(consent: Consent) -> None:
    [page] = await consent.stream(b'{"command": "marketing.audience", "purpose": "spam"}')
    assert page.final and page.sequence == 0
    assert page.error is not None and "purpose" in page.error


# --- order independence through the service ----------------------------------------------------


SUMMARY = set(ConsentSummary.model_fields)


async def final_state(deliveries: list[Delivery]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """What a fresh service stores about the person after these deliveries, and its history.

    Clock times are left out, and so is the record of what was announced: announcements follow
    the order of arrival by design (consumers are told of each change as it is seen). What is
    checked of them is that the last one tells the stored state.
    """
    async with consent_service() as service:
        for routing_key, payload in deliveries:
            await service.deliver(routing_key, payload)
        stored = await service.person(EMAIL)
        assert stored is not None
        last = (
            ConsentChanged.model_validate(service.changes[-1], strict=False)
            if service.changes
            else ConsentSummary()
        )
        assert last.model_dump(include=SUMMARY) == stored.announced.model_dump()
        assert stored.announced == stored.state.summary()
        # A fact's dump leaves out when it was recorded.
        history = [fact.model_dump() for fact in await service.history(EMAIL)]
        return stored.model_dump(exclude={"announced"}), history


@settings(max_examples=20, deadline=None)
@given(sent=events, data=st.data())
async def test_the_service_ends_in_the_same_state_however_the_events_arrive(
    sent: list[Delivery], data: st.DataObject
) -> None:
    first, second = data.draw(two_deliveries(sent))
    assert await final_state(first) == await final_state(second)
