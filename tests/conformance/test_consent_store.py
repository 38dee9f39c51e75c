"""The consent store's port, the same tests against every adapter (tests/conformance/conftest.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.consent.domain import AnyFact, ConsentState, ObjectionFact, PermissionFact, project
from services.consent.store import ConsentStore, open_store
from shared.contracts.consent import ConsentSummary, Contact, Purpose
from shared.database import Database
from shared.identity import SubjectHasher

HASH = SubjectHasher("conformance-key")
AINO = "aino.virtanen@example.fi"
OLLI = "olli@example.fi"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def store(database: Database) -> ConsentStore:
    return await open_store(database)


def permission(
    event: str, purpose: Purpose, granted: bool, minute: int, source: str = "checkout"
) -> PermissionFact:
    return PermissionFact(
        event_id=event,
        purpose=purpose,
        granted=granted,
        occurred_at=T0 + timedelta(minutes=minute),
        source=source,
        text_version="v1",
    )


def objection(event: str, objected: bool, minute: int) -> ObjectionFact:
    return ObjectionFact(
        event_id=event,
        objected=objected,
        occurred_at=T0 + timedelta(minutes=minute),
        source="customer-service",
    )


def contact(email: str, first_name: str = "Aino") -> Contact:
    return Contact(email=email, first_name=first_name, last_name="Virtanen")


def positions(facts: list[AnyFact]) -> list[tuple[str, str]]:
    return [(fact.event_id, fact.topic) for fact in facts]


async def record(store: ConsentStore, email: str, facts: list[AnyFact]) -> None:
    """Append the facts and store the projection of all the person's facts, as the service does."""
    subject = HASH(email)
    await store.append_facts(subject, facts)
    stored = await store.facts_of(subject)
    await store.save_state(subject, project(stored), facts_seen=len(stored))


async def buyer(store: ConsentStore, email: str, *purposes: Purpose) -> None:
    """Someone who ordered (so addressable) and said yes to exactly `purposes`."""
    await store.save_contact(HASH(email), contact(email), T0, f"order-{email}")
    answers = [
        permission(f"order-{email}", purpose, purpose in purposes, 0)
        for purpose in ("newsletter", "marketing")
    ]
    await record(store, email, list(answers))


async def pages(store: ConsentStore, purpose: Purpose, page_size: int = 500) -> list[list[str]]:
    return [[row["email"] for row in page] async for page in store.audience(purpose, page_size)]


async def emails(store: ConsentStore, purpose: Purpose) -> list[str]:
    return [email for page in await pages(store, purpose) for email in page]


# --- history -------------------------------------------------------------------------------------


async def test_facts_are_kept_once_and_read_back_in_the_order_they_happened(
    store: ConsentStore,
) -> None:
    subject = HASH(AINO)
    later = permission("e2", "newsletter", False, 5)
    earlier = [permission("e1", "newsletter", True, 1), permission("e1", "marketing", True, 1)]
    assert await store.append_facts(subject, [later]) == 1
    assert await store.append_facts(subject, earlier) == 2
    first_recorded = (await store.facts_of(subject))[0].recorded_at

    # A redelivered event adds nothing and keeps when its facts were first recorded.
    assert await store.append_facts(subject, [*earlier, objection("e3", True, 3)]) == 1
    assert await store.append_facts(subject, []) == 0

    facts = await store.facts_of(subject)
    assert positions(facts) == [
        ("e1", "marketing"),
        ("e1", "newsletter"),
        ("e3", "objection"),
        ("e2", "newsletter"),
    ]
    assert facts[0].recorded_at == first_recorded
    assert all(fact.recorded_at is not None for fact in facts)
    assert facts[3].model_dump() == later.model_dump()  # all the fact says, as it said it
    assert await store.count_facts(subject) == 4
    assert await store.facts_of(HASH(OLLI)) == [] and await store.count_facts(HASH(OLLI)) == 0


async def test_moments_come_back_in_utc_to_the_millisecond(store: ConsentStore) -> None:
    subject = HASH(AINO)
    helsinki = timezone(timedelta(hours=2))
    told = datetime(2026, 3, 1, 14, 0, 0, 123456, tzinfo=helsinki)
    kept = datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)
    fact = permission("e1", "newsletter", True, 0).model_copy(update={"occurred_at": told})
    await store.append_facts(subject, [fact])
    [read] = await store.facts_of(subject)
    assert read.occurred_at == kept and read.occurred_at.utcoffset() == timedelta(0)
    assert read.occurred_at.microsecond == 123000
    recorded = read.recorded_at
    assert recorded is not None and recorded.utcoffset() == timedelta(0)
    assert recorded.microsecond % 1000 == 0

    person = await store.save_state(subject, project([fact]), facts_seen=1)
    assert person is not None
    stored = person.state.permissions["newsletter"].occurred_at
    assert stored == kept and stored.utcoffset() == timedelta(0) and stored.microsecond == 123000

    await store.suppress(subject, told)
    since = await store.suppressed_since(subject)
    assert since == kept and since is not None and since.utcoffset() == timedelta(0)


# --- people --------------------------------------------------------------------------------------


async def test_a_projection_from_fewer_facts_never_replaces_one_from_more(
    store: ConsentStore,
) -> None:
    subject = HASH(AINO)
    assert await store.person(subject) is None
    older = project([permission("e1", "newsletter", True, 1)])
    newer = project([permission("e1", "newsletter", True, 1), objection("e2", True, 2)])

    person = await store.save_state(subject, newer, facts_seen=2)
    assert person is not None and person.version == 2 and person.state == newer
    assert person.announced == ConsentSummary() and person.contact is None

    for stale, seen in ((older, 1), (older, 2)):
        kept = await store.save_state(subject, stale, facts_seen=seen)
        assert kept is not None and kept.version == 2 and kept.state == newer
    assert await store.person(subject) == person

    newest = project([permission("e3", "marketing", True, 3)])
    moved = await store.save_state(subject, newest, facts_seen=3)
    assert moved is not None and moved.version == 3 and moved.state == newest


async def test_of_two_concurrent_projections_the_one_from_more_facts_wins(
    store: ConsentStore,
) -> None:
    subject = HASH(AINO)
    older = project([permission("e1", "newsletter", True, 1)])
    newer = project([permission("e1", "newsletter", True, 1), objection("e2", True, 2)])
    await asyncio.gather(
        store.save_state(subject, older, facts_seen=1),
        store.save_state(subject, newer, facts_seen=2),
    )
    person = await store.person(subject)
    assert person is not None and person.version == 2 and person.state == newer

    # The other way round: the older writer, last, finds the newer projection and keeps it.
    other = HASH(OLLI)
    first, second = await asyncio.gather(
        store.save_state(other, newer, facts_seen=2),
        store.save_state(other, older, facts_seen=1),
    )
    assert first == second and second is not None and second.state == newer


async def test_the_latest_orders_contact_is_kept_whatever_order_they_arrive_in(
    store: ConsentStore,
) -> None:
    subject = HASH(AINO)
    assert await store.save_contact(subject, contact(AINO, "Second"), T0, "event-b") is True

    person = await store.person(subject)
    assert person is not None and person.contact == contact(AINO, "Second")
    assert person.version == 0 and person.state == ConsentState()

    # An older order, the same order again, or an order of the same moment with a lower event id.
    earlier = T0 - timedelta(days=1)
    assert await store.save_contact(subject, contact(AINO, "First"), earlier, "event-z") is False
    assert await store.save_contact(subject, contact(AINO, "Second"), T0, "event-b") is False
    assert await store.save_contact(subject, contact(AINO, "Tie"), T0, "event-a") is False
    person = await store.person(subject)
    assert person is not None and person.contact == contact(AINO, "Second")

    # The same moment with a higher event id, then a later order, replace it.
    assert await store.save_contact(subject, contact(AINO, "Tie"), T0, "event-c") is True
    later = T0 + timedelta(milliseconds=1)
    assert await store.save_contact(subject, contact(AINO, "Latest"), later, "event-a") is True
    person = await store.person(subject)
    assert person is not None and person.contact == contact(AINO, "Latest")


async def test_of_two_concurrent_contacts_the_later_orders_wins(store: ConsentStore) -> None:
    subject = HASH(AINO)
    await asyncio.gather(
        store.save_contact(subject, contact(AINO, "Older"), T0, "event-1"),
        store.save_contact(subject, contact(AINO, "Newer"), T0 + timedelta(hours=1), "event-2"),
    )
    person = await store.person(subject)
    assert person is not None and person.contact == contact(AINO, "Newer")


async def test_a_new_persons_contact_and_projection_written_at_once_are_both_kept(
    store: ConsentStore,
) -> None:
    subject = HASH(AINO)
    state = project([permission("e1", "newsletter", True, 1)])
    await asyncio.gather(
        store.save_contact(subject, contact(AINO), T0, "e1"),
        store.save_state(subject, state, facts_seen=1),
    )
    person = await store.person(subject)
    assert person is not None and person.contact == contact(AINO)
    assert person.state == state and person.version == 1
    assert await emails(store, "newsletter") == [AINO]


async def test_what_was_announced_is_kept_only_for_the_projection_it_was_made_from(
    store: ConsentStore,
) -> None:
    subject = HASH(AINO)
    state = project([permission("e1", "newsletter", True, 1)])
    person = await store.save_state(subject, state, facts_seen=1)
    assert person is not None and person.changed

    await store.mark_announced(subject, state.summary(), version=1)
    announced = await store.person(subject)
    assert announced is not None and announced.announced == state.summary()
    assert not announced.changed

    newer = project([permission("e1", "newsletter", True, 1), objection("e2", True, 2)])
    await store.save_state(subject, newer, facts_seen=2)
    await store.mark_announced(subject, state.summary(), version=1)  # a slow announcer
    stored = await store.person(subject)
    assert stored is not None and stored.announced == state.summary() and stored.changed
    await store.mark_announced(HASH(OLLI), state.summary(), version=1)
    assert await store.person(HASH(OLLI)) is None


# --- the audience --------------------------------------------------------------------------------


async def test_the_audience_is_who_may_be_contacted_and_has_a_name_in_subject_order(
    store: ConsentStore,
) -> None:
    yes = [f"yes{number}@example.fi" for number in range(5)]
    for email in yes:
        await buyer(store, email, "newsletter")
    await buyer(store, "both@example.fi", "newsletter", "marketing")
    await buyer(store, "marketing@example.fi", "marketing")
    await buyer(store, "objects@example.fi", "newsletter")
    await record(store, "objects@example.fi", [objection("o1", True, 1)])
    # Known only from the account page: no name to address them by, so not in the list yet.
    await record(store, "account@example.fi", [permission("a1", "newsletter", True, 1)])

    newsletter = sorted([*yes, "both@example.fi"], key=HASH)
    assert await store.count_audience("newsletter") == 6
    assert await emails(store, "newsletter") == newsletter
    assert await pages(store, "newsletter", page_size=4) == [newsletter[:4], newsletter[4:]]
    assert await pages(store, "newsletter", page_size=3) == [newsletter[:3], newsletter[3:]]
    assert await store.count_audience("marketing") == 2
    assert sorted(await emails(store, "marketing")) == ["both@example.fi", "marketing@example.fi"]
    rows = [row async for page in store.audience("marketing", 500) for row in page]
    assert contact("both@example.fi").model_dump() in rows

    # Their first order gives the account-page person a name: in the list from then on.
    await store.save_contact(HASH("account@example.fi"), contact("account@example.fi"), T0, "o")
    assert "account@example.fi" in await emails(store, "newsletter")
    assert await store.count_audience("newsletter") == 7


async def test_people_leave_the_audience_when_their_state_says_so(store: ConsentStore) -> None:
    await buyer(store, AINO, "newsletter", "marketing")
    await buyer(store, OLLI, "newsletter")
    await record(store, AINO, [permission("e2", "marketing", False, 5, source="account-page")])
    assert await emails(store, "marketing") == [] and await store.count_audience("marketing") == 0
    assert sorted(await emails(store, "newsletter")) == sorted([AINO, OLLI])

    await record(store, AINO, [objection("e3", True, 6)])
    assert await emails(store, "newsletter") == [OLLI]
    await record(store, AINO, [objection("e4", False, 7)])
    assert sorted(await emails(store, "newsletter")) == sorted([AINO, OLLI])

    # A newer contact changes the name the export uses, not who is in it.
    await store.save_contact(HASH(AINO), contact(AINO, "Renamed"), T0 + timedelta(days=1), "x")
    rows = [row async for page in store.audience("newsletter", 500) for row in page]
    assert sorted(row["first_name"] for row in rows) == ["Aino", "Renamed"]
    assert await store.count_audience("newsletter") == 2


async def test_an_export_in_progress_lets_other_writes_through(store: ConsentStore) -> None:
    everyone = [f"person{number}@example.fi" for number in range(5)]
    for email in everyone:
        await buyer(store, email, "newsletter")
    export = store.audience("newsletter", 2)
    first = await anext(export)
    await record(store, "late@example.fi", [permission("l1", "marketing", True, 1)])
    rest = [page async for page in export]
    assert [row["email"] for page in [first, *rest] for row in page] == sorted(everyone, key=HASH)
    assert await store.count_facts(HASH("late@example.fi")) == 1


async def test_an_empty_audience_has_no_pages(store: ConsentStore) -> None:
    assert await pages(store, "newsletter") == [] and await store.count_audience("newsletter") == 0


# --- erasure and suppressions --------------------------------------------------------------------


async def test_erasing_a_person_leaves_nothing_of_them_and_everyone_else_as_they_were(
    store: ConsentStore,
) -> None:
    await buyer(store, AINO, "newsletter", "marketing")
    await buyer(store, OLLI, "newsletter")
    olli = await store.person(HASH(OLLI))

    await store.erase_person(HASH(AINO))
    assert await store.person(HASH(AINO)) is None
    assert await store.facts_of(HASH(AINO)) == [] and await store.count_facts(HASH(AINO)) == 0
    assert await emails(store, "newsletter") == [OLLI] and await emails(store, "marketing") == []
    assert await store.count_audience("newsletter") == 1
    assert await store.count_audience("marketing") == 0
    assert await store.person(HASH(OLLI)) == olli and await store.count_facts(HASH(OLLI)) == 2

    await store.erase_person(HASH(AINO))  # again: nothing left to erase, nothing fails
    await store.erase_person(HASH("nobody@example.fi"))

    # Back with a new order after it: a clean record.
    await buyer(store, AINO, "marketing")
    assert await emails(store, "marketing") == [AINO]


async def test_a_suppression_stands_until_lifted_and_only_moves_forward_when_kept(
    store: ConsentStore,
) -> None:
    subject = HASH(AINO)
    assert await store.suppressed_since(subject) is None
    await store.suppress(subject, T0)
    assert await store.suppressed_since(subject) == T0
    await store.suppress(subject, T0 - timedelta(days=1))  # a repeated erasure sets its own time
    assert await store.suppressed_since(subject) == T0 - timedelta(days=1)

    assert await store.keep_suppressed_from(subject, T0) is True
    assert await store.suppressed_since(subject) == T0
    assert await store.keep_suppressed_from(subject, T0) is False
    assert await store.keep_suppressed_from(subject, T0 - timedelta(hours=1)) is False
    assert await store.suppressed_since(subject) == T0
    assert await store.keep_suppressed_from(HASH(OLLI), T0) is True
    assert await store.suppressed_since(HASH(OLLI)) == T0

    # Only an erasure after the suppression began lifts it.
    await store.lift_suppression(subject, before=T0)
    assert await store.suppressed_since(subject) == T0
    await store.lift_suppression(subject, before=T0 + timedelta(milliseconds=1))
    assert await store.suppressed_since(subject) is None
    assert await store.suppressed_since(HASH(OLLI)) == T0

    # Erasing the person's facts leaves their suppression alone.
    await store.erase_person(HASH(OLLI))
    assert await store.suppressed_since(HASH(OLLI)) == T0
