"""What the retention sweep asks of each store port, the same tests on every adapter
(tests/conformance/conftest.py: each query must be served by an index)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.consent.store import open_store as open_consent_store
from services.disclosure.store import open_store as open_disclosure_store
from services.erasure.domain import new_access
from services.erasure.store import open_store as open_erasure_store
from services.orders.store import open_store as open_orders_store
from shared.audit import audit_records
from shared.contracts.consent import Contact
from shared.database import Database
from shared.erasure.records import open_erasure_records
from tests.conformance.test_consent_store import permission
from tests.conformance.test_disclosure_store import a_disclosure
from tests.conformance.test_erasure_store import erasure, reported_by_all
from tests.conformance.test_orders_store import AINO, PLACED, a_profile, an_order
from tests.conformance.test_shared_stores import entry
from tests.conformance.test_shared_stores import report as erasure_report

CUT = datetime(2025, 6, 1, tzinfo=UTC)
"""A sweep's cut-off: what started before it has expired."""
BEFORE, AFTER = CUT - timedelta(milliseconds=1), CUT


# --- orders ------------------------------------------------------------------------------------


async def test_buyers_are_found_by_their_profile_as_of_their_last_order(
    database: Database,
) -> None:
    store = await open_orders_store(database)
    await store.update_profile(a_profile("subject-old", BEFORE - timedelta(days=9), "Old"))
    await store.update_profile(a_profile("subject-older", BEFORE - timedelta(days=99), "Older"))
    await store.update_profile(a_profile("subject-new", AFTER, "New"))
    assert await store.profiles_before("buyer", CUT) == ["subject-older", "subject-old"]
    assert await store.count_profiles_before("buyer", CUT) == 2
    assert await store.profiles_before("recipient", CUT) == []

    # A newer order since: the profile is kept; otherwise it goes, once.
    await store.update_profile(a_profile("subject-old", AFTER, "Back"))
    assert not await store.delete_profile_before("buyer", "subject-old", CUT)
    assert await store.delete_profile_before("buyer", "subject-older", CUT)
    assert not await store.delete_profile_before("buyer", "subject-older", CUT)
    assert await store.profiles_before("buyer", CUT) == []
    assert await store.profile("buyer", "subject-old") is not None


async def test_orders_still_naming_their_recipient_are_found_by_when_they_were_placed(
    database: Database,
) -> None:
    store = await open_orders_store(database)
    old = an_order("KK-old", placed_at=BEFORE)
    new = an_order("KK-new", placed_at=AFTER)
    stripped = an_order("KK-stripped", placed_at=BEFORE - timedelta(days=1))
    for order in (old, new, stripped):
        await store.add_order(order)
    await store.erase_from_order(stripped, "recipient", "req-1")
    assert [o.order_id for o in await store.orders_with_recipient_before(CUT)] == ["KK-old"]
    assert await store.count_orders_with_recipient_before(CUT) == 1


async def test_an_expired_person_is_stripped_without_an_erasure_request(
    database: Database,
) -> None:
    store = await open_orders_store(database)
    order = an_order("KK-1", placed_at=PLACED)
    await store.add_order(order)
    await store.erase_from_order(order, "recipient", None)
    assert await store.count_orders_with_recipient_before(PLACED + timedelta(days=1)) == 0
    assert await store.retained_orders(["req-1"]) == []
    [kept] = await store.orders_of(AINO)
    assert kept.recipient is None and kept.erasures is None
    assert kept.retention is not None and kept.kept_until is None, "Aino is still in it"

    await store.erase_from_order(order, "buyer", None)
    assert await store.count_expired_ledgers("2031-12-31") == 0
    assert await store.count_expired_ledgers("2032-01-01") == 1
    assert await store.delete_expired_ledgers("2032-01-01") == 1
    assert await store.order("KK-1") is None


# --- consent -----------------------------------------------------------------------------------


async def test_a_persons_activity_is_their_latest_fact_or_order(database: Database) -> None:
    store = await open_consent_store(database)
    facts = [permission("e-1", "newsletter", True, 0), permission("e-2", "marketing", True, 5)]
    await store.append_facts("subject-aino", facts)
    assert await store.last_activity("subject-aino") == facts[1].occurred_at

    # An older event delivered late moves nothing back; a newer order moves it on.
    await store.append_facts("subject-aino", [permission("e-0", "marketing", False, -60)])
    assert await store.last_activity("subject-aino") == facts[1].occurred_at
    ordered = facts[1].occurred_at + timedelta(days=3)
    contact = Contact(email="aino@example.fi", first_name="Aino", last_name="V")
    await store.save_contact("subject-aino", contact, as_of=ordered, event_id="e-3")
    assert await store.last_activity("subject-aino") == ordered
    # A checkout seen before its update: the contact stays, the activity is the latest.
    assert not await store.save_contact("subject-aino", contact, ordered - timedelta(1), "e-9")
    assert await store.last_activity("subject-aino") == ordered

    await store.save_contact("subject-olli", contact, as_of=facts[0].occurred_at, event_id="e-4")
    assert await store.inactive_before(ordered) == ["subject-olli"]
    assert await store.inactive_before(ordered + timedelta(milliseconds=1)) == [
        "subject-olli",
        "subject-aino",
    ]
    assert await store.count_inactive_before(ordered) == 1

    await store.erase_person("subject-olli")
    assert await store.last_activity("subject-olli") is None
    assert await store.count_inactive_before(ordered) == 0
    assert await store.last_activity("subject-nobody") is None


async def test_activity_survives_opening_the_store_again(database: Database) -> None:
    store = await open_consent_store(database)
    await store.append_facts("subject-aino", [permission("e-1", "newsletter", True, 0)])
    again = await open_consent_store(database)
    assert await again.count_inactive_before(datetime(2100, 1, 1, tzinfo=UTC)) == 1


# --- disclosure --------------------------------------------------------------------------------


async def test_held_disclosures_held_too_long_are_cancelled_and_their_copy_deleted(
    database: Database,
) -> None:
    store = await open_disclosure_store(database)
    old, new, sent = a_disclosure("KK-old"), a_disclosure("KK-new"), a_disclosure("KK-sent")
    await store.record_held(old, ["subject-aino"], "not registered", BEFORE)
    await store.record_held(new, ["subject-aino"], "not registered", AFTER)
    await store.record_sent(sent, ["subject-aino"], BEFORE)
    assert await store.count_held_before(CUT) == 1

    assert await store.cancel_held_before(CUT, "cancelled: held too long") == 1
    assert await store.cancel_held_before(CUT, "cancelled: held too long") == 0
    [entry] = await store.log_of("KK-old")
    assert entry.status == "cancelled" and entry.hold_reason == "cancelled: held too long"
    assert not entry.holds_data
    assert await store.claim_for_release(str(old.disclosure_id), AFTER) is None
    assert [held.order_id for held in await store.held()] == ["KK-new"]


async def test_the_log_goes_by_when_its_order_was_placed_whomever_it_names(
    database: Database,
) -> None:
    store = await open_disclosure_store(database)
    sent, held = a_disclosure("KK-1", "spa-oy"), a_disclosure("KK-1", "kart-oy")
    await store.record_sent(sent, ["subject-aino"], BEFORE)
    await store.record_held(held, ["subject-aino"], "not registered", BEFORE)
    [logged] = await store.sent_naming("subject-aino")
    assert logged.placed_at == sent.occurred_at
    placed = sent.occurred_at
    assert await store.count_log_before(placed) == 0
    assert await store.count_log_before(placed + timedelta(milliseconds=1)) == 2
    assert await store.delete_log_before(placed + timedelta(milliseconds=1)) == 2
    assert await store.log_of("KK-1") == []
    assert await store.held_of("subject-aino") == []


# --- erasure -----------------------------------------------------------------------------------


async def test_done_requests_go_by_when_they_were_received_open_ones_stay(
    database: Database,
) -> None:
    store = await open_erasure_store(database)
    await store.add(erasure("req-done", at=BEFORE))
    await reported_by_all(store, "req-done")
    assert await store.complete("req-done", BEFORE) is not None
    await store.add(erasure("req-open", at=BEFORE - timedelta(days=1)))
    await store.add(new_access("req-access", "hash-of-aino", "ops-anna", BEFORE))
    await store.add(new_access("req-later", "hash-of-aino", "ops-anna", AFTER))
    assert await store.count_done_before(CUT) == 2
    assert await store.delete_done_before(CUT) == 2
    assert [r.request_id for r in await store.requests(open_only=False)] == [
        "req-open",
        "req-later",
    ]


async def test_a_participants_erasure_reports_go_by_when_they_were_made(
    database: Database,
) -> None:
    records = await open_erasure_records(database)
    old = erasure_report("req-old", 1).model_copy(update={"reported_at": BEFORE})
    new = erasure_report("req-new", 1).model_copy(update={"reported_at": AFTER})
    for each in (old, new):
        await records.save_report(each)
    await records.mark_done("req-old")
    assert await records.count_reports_before(CUT) == 1
    assert await records.delete_reports_before(CUT) == 1
    assert await records.report("req-old") is None
    assert await records.report("req-new") == (new, False)
    assert await records.count_reports_before(CUT) == 0


async def test_audit_entries_go_by_when_they_were_written(database: Database) -> None:
    records = audit_records(database)
    await records.prepare()
    for at in (BEFORE - timedelta(days=1), BEFORE, AFTER):
        await records.append(entry(at, "alice"))
    assert await records.count_before(CUT) == 2
    assert await records.delete_before(CUT) == 2
    assert [each.at for each in await records.entries(None, None, 10)] == [AFTER]
