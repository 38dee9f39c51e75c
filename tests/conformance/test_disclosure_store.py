"""The disclosure store port, the same tests on every adapter (tests/conformance/conftest.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from services.disclosure.domain import disclosed_fields, plan_disclosures
from services.disclosure.store import (
    RELEASE_LEASE,
    DisclosureStore,
    Named,
    NamedEntry,
    open_store,
)
from shared.contracts.disclosures import Disclosure
from shared.contracts.erasure import EraseSubject
from shared.contracts.providers import Provider
from shared.contracts.webshop import OrderPlaced
from shared.database import Database
from tests.factories import item, order_placed

PLACED = datetime(2025, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)
NOW = datetime(2026, 3, 2, 9, 30, 0, 456000, tzinfo=UTC)
AINO, EINO, OTTO = "subject-aino", "subject-eino", "subject-otto"


def disclosures(order_id: str, *provider_ids: str) -> list[Disclosure]:
    """The order's disclosures, one per provider (in the order given)."""
    event = OrderPlaced.model_validate(
        order_placed(
            order_id=order_id,
            items=[item(provider_id, f"p-{provider_id}") for provider_id in provider_ids],
            occurred_at=PLACED,
        ),
        strict=False,
    )
    return [planned.disclosure for planned in plan_disclosures(event, {})]


def a_disclosure(order_id: str, provider_id: str = "spa-oy") -> Disclosure:
    [disclosure] = disclosures(order_id, provider_id)
    return disclosure


def a_provider(provider_id: str, name: str = "Kylpylä Oy") -> Provider:
    return Provider(
        provider_id=provider_id,
        name=name,
        country="FI",
        contact_email=f"info@{provider_id}.example",
        status="active",
        created_at=NOW,
        created_by="ops-anna",
        changed_at=NOW,
        changed_by="ops-anna",
    )


def ids(disclosures: list[Disclosure]) -> list[str]:
    return [str(disclosure.disclosure_id) for disclosure in disclosures]


# --- providers ---------------------------------------------------------------------------------


async def test_a_provider_is_registered_once_and_listed_by_id(database: Database) -> None:
    store: DisclosureStore = await open_store(database)
    spa, kart = a_provider("spa-oy"), a_provider("kart-oy", "Kartano")
    assert await store.add_provider(spa) is True
    assert await store.add_provider(kart) is True
    assert await store.add_provider(a_provider("spa-oy", "Someone else")) is False
    assert await store.provider("spa-oy") == spa
    assert await store.provider("nobody-oy") is None
    assert await store.providers() == [kart, spa]
    assert await store.providers(["spa-oy", "nobody-oy"]) == [spa]
    assert await store.providers([]) == []


async def test_a_provider_change_sets_only_its_fields_and_who_made_it(database: Database) -> None:
    store = await open_store(database)
    await store.add_provider(a_provider("spa-oy"))
    later = NOW + timedelta(hours=1)
    # Two changes of different fields at once: neither undoes the other.
    renamed, suspended = await asyncio.gather(
        store.change_provider("spa-oy", {"name": "Spa Oy"}, "ops-ben", later),
        store.change_provider("spa-oy", {"status": "suspended"}, "ops-ben", later),
    )
    assert renamed is not None and renamed.name == "Spa Oy"
    assert suspended is not None and suspended.status == "suspended"
    stored = await store.provider("spa-oy")
    assert stored == a_provider("spa-oy").model_copy(
        update={
            "name": "Spa Oy",
            "status": "suspended",
            "changed_at": later,
            "changed_by": "ops-ben",
        }
    )
    assert await store.change_provider("nobody-oy", {"name": "X"}, "ops-ben", later) is None
    with pytest.raises(ValueError):
        await store.change_provider("spa-oy", {"created_by": "mallory"}, "ops-ben", later)
    assert await store.provider("spa-oy") == stored


# --- the log: sending, holding, releasing ------------------------------------------------------


async def test_a_sent_disclosure_is_logged_once_without_a_copy_of_the_data(
    database: Database,
) -> None:
    store = await open_store(database)
    disclosure = a_disclosure("KK-1")
    disclosure_id = str(disclosure.disclosure_id)
    assert await store.is_recorded(disclosure_id) is False
    await store.record_sent(disclosure, [AINO, EINO], NOW)
    await store.record_sent(disclosure, [AINO, EINO], NOW + timedelta(seconds=5))
    assert await store.is_recorded(disclosure_id) is True

    # The log names the fields the disclosure carried, not their values.
    fields = disclosed_fields(disclosure)
    assert "buyer.email" in fields and "recipient.first_name" in fields
    [entry] = await store.log_of("KK-1")
    assert (entry.disclosure_id, entry.provider_id, entry.status) == (
        disclosure_id,
        "spa-oy",
        "sent",
    )
    assert entry.subjects == (AINO, EINO) and entry.fields == tuple(fields)
    assert entry.product_ids == ("p-spa-oy",) and entry.placed_at == PLACED
    assert entry.recorded_at == NOW and entry.sent_at == NOW + timedelta(seconds=5)
    assert not entry.holds_data and entry.hold_reason is None and entry.released_by is None

    [sent] = await store.sent_to("spa-oy")
    assert sent.disclosure_id == disclosure_id and sent.message_id == disclosure_id
    assert (sent.order_id, sent.fields, sent.product_ids) == ("KK-1", fields, ["p-spa-oy"])
    assert await store.sent_naming(EINO) == [sent]
    assert await store.held() == [] and await store.held_of(AINO) == []
    assert await store.claim_for_release(disclosure_id, NOW) is None


async def test_a_held_disclosure_keeps_its_data_until_released_and_sent(
    database: Database,
) -> None:
    store = await open_store(database)
    disclosure = a_disclosure("KK-1")
    disclosure_id = str(disclosure.disclosure_id)
    await store.record_held(disclosure, [AINO, EINO], "provider spa-oy is suspended", NOW)
    # A redelivered order finds it logged: the first reason and time stay.
    await store.record_held(disclosure, [AINO], "again", NOW + timedelta(seconds=1))
    [held] = await store.held()
    assert (held.disclosure_id, held.order_id, held.provider_id) == (
        disclosure_id,
        "KK-1",
        "spa-oy",
    )
    assert (held.status, held.reason, held.held_since) == (
        "held",
        "provider spa-oy is suspended",
        NOW,
    )
    assert await store.held("KK-1") == [held] and await store.held_of(EINO) == [held]
    assert await store.held("KK-2") == [] and await store.sent_naming(AINO) == []
    [entry] = await store.log_of("KK-1")
    assert entry.status == "held" and entry.holds_data and entry.subjects == (AINO, EINO)

    claimed_at = NOW + timedelta(minutes=5)
    assert await store.claim_for_release(disclosure_id, claimed_at) == disclosure
    await store.record_sent(disclosure, [AINO, EINO], claimed_at, released_by="ops-anna")
    [entry] = await store.log_of("KK-1")
    assert (entry.status, entry.released_by, entry.sent_at) == ("sent", "ops-anna", claimed_at)
    assert entry.recorded_at == NOW, "logged when it was held"
    assert not entry.holds_data and entry.hold_reason is None
    assert await store.held() == []
    assert await store.claim_for_release(disclosure_id, claimed_at + RELEASE_LEASE * 2) is None
    # A redelivery after the release keeps who released it.
    await store.record_sent(disclosure, [AINO, EINO], claimed_at)
    [entry] = await store.log_of("KK-1")
    assert entry.released_by == "ops-anna"


async def test_held_disclosures_come_oldest_first_and_by_order(database: Database) -> None:
    store = await open_store(database)
    spa, kart = disclosures("KK-1", "spa-oy", "kart-oy")
    other = a_disclosure("KK-2")
    await store.record_held(other, [OTTO], "not registered", NOW + timedelta(seconds=2))
    # Held in the same millisecond: the disclosure id decides, on every adapter.
    await store.record_held(spa, [AINO], "not registered", NOW)
    await store.record_held(kart, [AINO], "not registered", NOW)
    first_two = sorted(ids([spa, kart]))
    assert [h.disclosure_id for h in await store.held()] == [*first_two, ids([other])[0]]
    assert [h.disclosure_id for h in await store.held("KK-1")] == first_two
    assert [h.disclosure_id for h in await store.held_of(AINO)] == first_two
    [entry_kart, entry_spa] = await store.log_of("KK-1")
    assert (entry_kart.provider_id, entry_spa.provider_id) == ("kart-oy", "spa-oy")


async def test_a_claim_lapses_after_its_lease_and_one_given_back_is_held_again(
    database: Database,
) -> None:
    store = await open_store(database)
    disclosure = a_disclosure("KK-1")
    disclosure_id = str(disclosure.disclosure_id)
    await store.record_held(disclosure, [AINO], "not registered", NOW)

    assert await store.claim_for_release(disclosure_id, NOW) == disclosure
    assert await store.claim_for_release(disclosure_id, NOW + RELEASE_LEASE) is None
    [claimed] = await store.held()
    assert claimed.status == "releasing"
    # The release that claimed it died before sending: after the lease, another may.
    later = NOW + RELEASE_LEASE * 2
    assert await store.claim_for_release(disclosure_id, later) == disclosure
    await store.give_back(disclosure_id)
    [held] = await store.held()
    assert (held.status, held.reason) == ("held", "not registered")
    assert await store.claim_for_release(disclosure_id, later) == disclosure
    await store.give_back("unknown-id")
    await store.give_back(disclosure_id)
    await store.give_back(disclosure_id)
    assert [h.status for h in await store.held()] == ["held"]


async def test_of_two_claims_at_once_exactly_one_gets_the_disclosure(database: Database) -> None:
    store = await open_store(database)
    disclosure = a_disclosure("KK-1")
    await store.record_held(disclosure, [AINO], "not registered", NOW)
    claims = await asyncio.gather(
        *(store.claim_for_release(str(disclosure.disclosure_id), NOW) for _ in range(2))
    )
    assert sorted(claims, key=lambda claim: claim is None) == [disclosure, None]


async def test_a_hold_and_a_send_at_once_end_sent_without_the_data(database: Database) -> None:
    store = await open_store(database)
    first, second = disclosures("KK-1", "spa-oy", "kart-oy")
    await asyncio.gather(
        store.record_held(first, [AINO], "not registered", NOW),
        store.record_sent(first, [AINO], NOW),
    )
    await asyncio.gather(
        store.record_sent(second, [AINO], NOW),
        store.record_held(second, [AINO], "not registered", NOW),
    )
    entries = await store.log_of("KK-1")
    assert [(e.status, e.holds_data, e.hold_reason) for e in entries] == [("sent", False, None)] * 2
    assert await store.held() == []


async def test_a_new_hold_reason_applies_only_to_a_disclosure_still_held(
    database: Database,
) -> None:
    store = await open_store(database)
    held, claimed = disclosures("KK-1", "spa-oy", "kart-oy")
    await store.record_held(held, [AINO], "not registered", NOW)
    await store.record_held(claimed, [AINO], "not registered", NOW)
    await store.claim_for_release(str(claimed.disclosure_id), NOW)
    for disclosure in (held, claimed):
        await store.note_hold_reason(str(disclosure.disclosure_id), "provider is suspended")
    reasons = {h.provider_id: (h.status, h.reason) for h in await store.held()}
    assert reasons == {
        "spa-oy": ("held", "provider is suspended"),
        "kart-oy": ("releasing", "not registered"),
    }


# --- who got whose data ------------------------------------------------------------------------


async def test_sent_disclosures_come_newest_first_by_person_or_provider(
    database: Database,
) -> None:
    store = await open_store(database)
    [old] = disclosures("KK-1", "spa-oy")
    tie_a, tie_b = disclosures("KK-2", "spa-oy", "kart-oy")
    [others] = disclosures("KK-3", "spa-oy")
    [held] = disclosures("KK-4", "spa-oy")
    await store.record_sent(old, [AINO, EINO], NOW - timedelta(days=1))
    await store.record_sent(tie_a, [EINO, AINO], NOW)
    await store.record_sent(tie_b, [AINO], NOW)
    await store.record_sent(others, [OTTO], NOW + timedelta(days=1))
    await store.record_held(held, [AINO], "not registered", NOW)

    newest_first = [*sorted(ids([tie_a, tie_b])), *ids([old])]
    assert [s.disclosure_id for s in await store.sent_naming(AINO)] == newest_first
    assert [s.disclosure_id for s in await store.sent_naming([EINO, AINO])] == newest_first
    limited = await store.sent_naming(AINO, limit=2)
    assert [s.disclosure_id for s in limited] == newest_first[:2]
    assert [s.order_id for s in await store.sent_to("spa-oy")] == ["KK-3", "KK-2", "KK-1"]
    assert [s.sent_at for s in await store.sent_naming(EINO)] == [NOW, NOW - timedelta(days=1)]
    assert await store.sent_naming("nobody") == [] and await store.sent_naming([]) == []


# --- erasure -----------------------------------------------------------------------------------


async def test_cancelling_a_persons_held_disclosures_deletes_their_data(
    database: Database,
) -> None:
    store = await open_store(database)
    held, claimed, sent = disclosures("KK-1", "spa-oy", "kart-oy", "golf-oy")
    [others] = disclosures("KK-2", "spa-oy")
    await store.record_held(held, [AINO, EINO], "not registered", NOW)
    await store.record_held(claimed, [AINO, EINO], "not registered", NOW)
    await store.claim_for_release(str(claimed.disclosure_id), NOW)
    await store.record_sent(sent, [AINO, EINO], NOW)
    await store.record_held(others, [OTTO], "not registered", NOW)

    await store.cancel_held(AINO, "cancelled: the person was erased (request req-1)")
    await store.cancel_held(AINO, "cancelled: the person was erased (request req-1)")
    entries = {e.provider_id: e for e in await store.log_of("KK-1")}
    for provider_id in ("spa-oy", "kart-oy"):
        entry = entries[provider_id]
        assert (entry.status, entry.holds_data) == ("cancelled", False)
        assert entry.hold_reason == "cancelled: the person was erased (request req-1)"
    assert (entries["golf-oy"].status, entries["golf-oy"].hold_reason) == ("sent", None)
    assert await store.held_of(AINO) == [] and await store.held_of(EINO) == []
    assert [h.order_id for h in await store.held()] == ["KK-2"]
    # A release that had claimed it cannot send it any more, nor claim it again.
    for disclosure in (held, claimed):
        disclosure_id = str(disclosure.disclosure_id)
        await store.give_back(disclosure_id)
        assert await store.claim_for_release(disclosure_id, NOW + RELEASE_LEASE * 2) is None


async def test_an_erased_person_is_named_in_no_entry_and_their_reference_in_each(
    database: Database,
) -> None:
    store = await open_store(database)
    spa, kart = disclosures("KK-1", "spa-oy", "kart-oy")
    [to_herself] = disclosures("KK-2", "spa-oy")
    [others] = disclosures("KK-3", "spa-oy")
    await store.record_sent(spa, [AINO, EINO], NOW)
    await store.record_held(kart, [AINO, EINO], "not registered", NOW)
    await store.record_sent(to_herself, [AINO, AINO], NOW)
    await store.record_sent(others, [OTTO], NOW)

    reference = "erased:req-1"
    await store.replace_subject(AINO, reference)
    await store.replace_subject(AINO, reference)  # a redelivery finds nothing left to do
    assert await store.entries_naming(AINO) == []
    assert await store.sent_naming(AINO) == [] and await store.held_of(AINO) == []
    assert await store.entries_naming(reference) == sorted(
        [
            NamedEntry(str(spa.disclosure_id), (reference, EINO), PLACED),
            NamedEntry(str(kart.disclosure_id), (reference, EINO), PLACED),
            NamedEntry(str(to_herself.disclosure_id), (reference,), PLACED),
        ],
        key=lambda entry: entry.disclosure_id,
    )
    assert {s.order_id for s in await store.sent_naming([reference])} == {"KK-1", "KK-2"}
    assert [h.provider_id for h in await store.held_of(reference)] == ["kart-oy"]
    assert [e.subjects for e in await store.log_of("KK-3")] == [(OTTO,)]
    assert [e.disclosure_id for e in await store.entries_naming(EINO)] == sorted(ids([spa, kart]))


async def test_an_entry_names_each_person_as_buyer_or_recipient_and_erasure_keeps_the_role(
    database: Database,
) -> None:
    store = await open_store(database)
    spa, kart = disclosures("KK-1", "spa-oy", "kart-oy")
    [to_herself] = disclosures("KK-2", "spa-oy")
    await store.record_sent(spa, [Named(AINO, "buyer"), Named(EINO, "recipient")], NOW)
    await store.record_held(
        kart, [Named(AINO, "buyer"), Named(EINO, "recipient")], "not registered", NOW
    )
    both = [Named(AINO, "recipient"), Named(AINO, "buyer")]
    await store.record_sent(to_herself, both, NOW)
    await store.record_sent(to_herself, both, NOW + timedelta(seconds=1))  # a repeat

    [spa_entry, kart_entry] = await store.log_of("KK-1")
    assert spa_entry.people == kart_entry.people == (Named(AINO, "buyer"), Named(EINO, "recipient"))
    [herself] = await store.log_of("KK-2")
    assert herself.people == (Named(AINO, "buyer"), Named(AINO, "recipient"))
    assert herself.subjects == (AINO,)

    reference = "erased:req-1"
    await store.replace_subject(AINO, reference)
    await store.replace_subject(AINO, reference)
    [spa_entry, kart_entry] = await store.log_of("KK-1")
    assert spa_entry.people == (Named(reference, "buyer"), Named(EINO, "recipient"))
    assert kart_entry.people == spa_entry.people
    [herself] = await store.log_of("KK-2")
    assert herself.people == (Named(reference, "buyer"), Named(reference, "recipient"))
    assert AINO not in repr(await store.log_of("KK-1")) + repr(herself)


async def test_a_person_named_without_a_role_is_logged_with_the_role_unknown(
    database: Database,
) -> None:
    store = await open_store(database)
    spa = a_disclosure("KK-1")
    await store.record_sent(spa, [AINO, Named(EINO, "recipient")], NOW)
    [entry] = await store.log_of("KK-1")
    assert entry.people == (Named(AINO), Named(EINO, "recipient"))
    await store.replace_subject(AINO, "erased:req-1")
    [entry] = await store.log_of("KK-1")
    assert entry.people == (Named("erased:req-1"), Named(EINO, "recipient"))


async def test_entries_kept_to_a_day_are_deleted_after_it_with_all_they_hold(
    database: Database,
) -> None:
    store = await open_store(database)
    sent, held = disclosures("KK-1", "spa-oy", "kart-oy")
    [recent] = disclosures("KK-2", "spa-oy")
    [named] = disclosures("KK-3", "spa-oy")
    await store.record_sent(sent, [AINO], NOW)
    await store.record_held(held, [AINO], "not registered", NOW)
    await store.record_sent(recent, [AINO], NOW)
    await store.record_sent(named, [EINO], NOW)
    await store.replace_subject(AINO, "erased:req-1")
    for disclosure in (sent, held):
        await store.keep_until(str(disclosure.disclosure_id), "2031-12-31")
    await store.keep_until(str(recent.disclosure_id), "2032-12-31")

    assert await store.delete_expired_entries("2031-12-31") == 0, "kept to the end of its day"
    assert await store.delete_expired_entries("2032-01-01") == 2
    assert await store.log_of("KK-1") == []
    assert not await store.is_recorded(str(held.disclosure_id))
    assert await store.held() == []
    assert [e.disclosure_id for e in await store.entries_naming("erased:req-1")] == ids([recent])
    assert await store.delete_expired_entries("2032-01-01") == 0
    assert await store.delete_expired_entries("2033-01-01") == 1
    assert await store.entries_naming("erased:req-1") == []
    assert [e.kept_until for e in await store.log_of("KK-3")] == [None]
    # The log entry of a person not erased is never swept.
    assert await store.delete_expired_entries("2099-01-01") == 0


async def test_the_store_keeps_its_erasure_records(database: Database) -> None:
    store = await open_store(database)
    subject = "a1" * 32
    await store.erasures.bury(
        EraseSubject(request_id="req-1", subject=subject, reason="subject-request", erased_at=NOW)
    )
    tombstone = await store.erasures.tombstone(subject)
    assert tombstone is not None
    assert (tombstone.erased_at, tombstone.request_ids) == (NOW, ("req-1",))
