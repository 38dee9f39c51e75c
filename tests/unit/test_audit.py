"""The audit log of staff's commands, on FastStream's test broker with SQLite in
memory: every command leaves an entry before its reply, whatever the outcome."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from faststream.rabbit import RabbitBroker

from services.disclosure.app import assemble as assemble_disclosure
from services.disclosure.settings import DisclosureSettings
from services.disclosure.store import open_store as open_disclosure_store
from shared import topology
from shared.audit import AUDIT_LOG, audit_records
from shared.contracts.consent import ExportAudience, ShowConsent
from shared.contracts.disclosure_ops import ListDisclosures
from shared.contracts.ops import OpsPage, OpsReply
from shared.contracts.providers import AddProvider, ChangeProviderStatus
from shared.contracts.runtime import ListAuditEntries
from shared.database import Database
from shared.identity import SubjectHasher
from tests.factories import order_placed
from tests.unit.test_consent_service import REPLIES, consent_service
from tests.unit.test_services import in_memory, running


async def send(
    broker: RabbitBroker, body: Any, *, user_id: str | None = "staff-anna", routing_key: str
) -> OpsReply:
    reply = await broker.request(
        body.model_dump_json().encode() if hasattr(body, "model_dump_json") else body,
        exchange=topology.ops_exchange(),
        routing_key=routing_key,
        user_id=user_id,
    )
    return OpsReply.model_validate_json(reply.body)


async def entries(database: Database) -> list[dict[str, Any]]:
    """The service's audit log, oldest first, as plain values."""
    newest_first = await audit_records(database).entries(since=None, actor=None, limit=1000)
    return [entry.model_dump() for entry in reversed(newest_first)]


async def test_every_command_is_audited_with_its_actor_targets_and_outcome() -> None:
    settings = in_memory(DisclosureSettings)
    async with running(settings, assemble_disclosure) as (broker, database):
        add = AddProvider(provider_id="spa-oy", name="Kylpylä Oy", country="FI")
        assert (await send(broker, add, routing_key="disclosure")).ok
        again = await send(broker, add, user_id="staff-ben", routing_key="disclosure")
        assert not again.ok
        suspend = ChangeProviderStatus(provider_id="spa-oy", status="suspended")
        assert (await send(broker, suspend, routing_key="disclosure")).ok
        broken = await send(broker, b'{"command": "providers.add"}', routing_key="disclosure")
        assert not broken.ok

        audited = await entries(database)
        assert [(e["actor"], e["command"], e["outcome"]) for e in audited] == [
            ("staff-anna", "providers.add", "ok"),
            ("staff-ben", "providers.add", "refused"),
            ("staff-anna", "providers.status", "ok"),
            ("staff-anna", "providers.add", "invalid"),
        ]
        assert audited[2]["targets"] == {"provider_id": "spa-oy", "status": "suspended"}
        assert all(e["service"] == "disclosure" and e["at"] for e in audited)
        assert "Kylpylä" not in json.dumps(audited, default=str), "names are not kept"


async def test_a_person_named_in_a_command_is_kept_as_a_subject_hash_never_the_email() -> None:
    settings = in_memory(DisclosureSettings)
    async with running(settings, assemble_disclosure) as (broker, database):
        asked = await send(
            broker, ListDisclosures(email="Aino@Example.fi"), routing_key="disclosure"
        )
        assert asked.ok and asked.result == []
        [entry] = await entries(database)
        assert entry["subject"] == SubjectHasher("unit-test-key")("aino@example.fi")
        assert entry["count"] == 0
        assert "aino" not in json.dumps(entry, default=str).lower()


async def test_a_command_without_a_user_id_is_refused_and_audited_as_such() -> None:
    settings = in_memory(DisclosureSettings)
    async with running(settings, assemble_disclosure) as (broker, database):
        add = AddProvider(provider_id="spa-oy", name="Spa", country="FI")
        refused = await send(broker, add, user_id=None, routing_key="disclosure")
        assert not refused.ok and "no AMQP user_id" in (refused.error or "")
        assert await (await open_disclosure_store(database)).providers() == []
        [entry] = await entries(database)
        assert (entry["actor"], entry["command"], entry["outcome"]) == (
            None,
            "providers.add",
            "refused",
        )


async def test_the_audit_log_is_listed_newest_first_by_actor_and_time_and_reading_it_is_audited() -> (
    None
):
    settings = in_memory(DisclosureSettings)
    async with running(settings, assemble_disclosure) as (broker, _):
        runtime = "disclosure.runtime"
        yesterday = datetime.now(UTC) - timedelta(days=1)
        audit_log = broker.context.get(AUDIT_LOG)
        audit_log.clock = lambda: yesterday
        spa = AddProvider(provider_id="spa-oy", name="S", country="FI")
        await send(broker, spa, routing_key="disclosure")
        audit_log.clock = lambda: datetime.now(UTC)
        kart = AddProvider(provider_id="kart-oy", name="K", country="SE")
        await send(broker, kart, user_id="staff-ben", routing_key="disclosure")

        everything = await send(broker, ListAuditEntries(), routing_key=runtime)
        assert [(e["actor"], e["targets"]) for e in everything.result] == [
            ("staff-ben", {"provider_id": "kart-oy"}),
            ("staff-anna", {"provider_id": "spa-oy"}),
        ]
        by_ben = await send(broker, ListAuditEntries(actor="staff-ben"), routing_key=runtime)
        assert [e["command"] for e in by_ben.result] == ["providers.add"]
        today = yesterday + timedelta(hours=23)
        recent = await send(broker, ListAuditEntries(since=today), routing_key=runtime)
        # The listings before are in the log now.
        assert [(e["actor"], e["command"]) for e in recent.result] == [
            ("staff-anna", "audit.list"),
            ("staff-anna", "audit.list"),
            ("staff-ben", "providers.add"),
        ]
        tomorrow = yesterday + timedelta(days=2)
        later = await send(broker, ListAuditEntries(since=tomorrow), routing_key=runtime)
        assert later.result == []


class UnwritableAuditLog:
    async def record(self, **_: Any) -> None:
        raise OSError("the database is down")


async def test_an_answer_whose_audit_entry_cannot_be_written_is_withheld() -> None:
    settings = in_memory(DisclosureSettings)
    async with running(settings, assemble_disclosure) as (broker, _):
        broker.context.set_global(AUDIT_LOG, UnwritableAuditLog())
        add = AddProvider(provider_id="spa-oy", name="Spa", country="FI")
        withheld = await send(broker, add, routing_key="disclosure")
        assert not withheld.ok and withheld.result is None
        assert "could not write its audit log" in (withheld.error or "")


async def test_an_export_is_audited_with_how_many_people_it_held_before_any_is_sent() -> None:
    async with consent_service() as consent:
        buyers = [order_placed(newsletter=False, marketing=True) for _ in range(3)]
        for order in buyers:
            await consent.deliver(topology.ORDER_PLACED, order)
        pages = await consent.stream(ExportAudience(purpose="marketing"))
        assert pages[0].total == 3
        email = buyers[0]["buyer"]["email"]
        assert (await consent.command(ShowConsent(email=email))).ok

        exported, shown = await entries(consent.database)
        assert (exported["command"], exported["outcome"], exported["actor"]) == (
            "marketing.audience",
            "ok",
            "staff-anna",
        )
        assert (exported["targets"], exported["count"]) == ({"purpose": "marketing"}, 3)
        assert shown["subject"] == SubjectHasher("unit-test-key")(email)
        assert email not in json.dumps([exported, shown], default=str)


async def export_audience_as(user_id: str | None) -> tuple[OpsPage, list[dict[str, Any]]]:
    """Ask a consent service that holds one marketing buyer for the marketing audience, as
    `user_id` (or with no user id): the one page it answers with, and its audit log after."""
    async with consent_service() as consent:
        await consent.deliver(topology.ORDER_PLACED, order_placed(marketing=True))
        await consent.broker.publish(
            ExportAudience(purpose="marketing").model_dump_json().encode(),
            exchange=topology.ops_exchange(),
            routing_key=topology.ops_stream_routing_key("consent"),
            reply_to=REPLIES,
            user_id=user_id,
        )
        [page] = consent.pages
        return page, await entries(consent.database)


async def test_an_export_without_a_user_id_is_refused_and_audited_before_any_row() -> None:
    page, [entry] = await export_audience_as(None)
    assert page.final and page.rows == [] and "no AMQP user_id" in (page.error or "")
    assert (entry["actor"], entry["outcome"]) == (None, "refused")
