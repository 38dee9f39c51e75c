"""The erasure service's store port, the same tests on every adapter (see conftest.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

from services.erasure.domain import ErasureRequest, Timing, new_access, new_erasure
from services.erasure.store import Attempt, ErasureStore, open_store
from shared.contracts.erasure import ErasureReported, ParticipantName, Retained
from shared.database import Database
from shared.times import to_millis
from shared.topology import ERASURE_PARTICIPANTS

# Microseconds on purpose: both stores keep whole milliseconds.
T0 = datetime(2025, 3, 1, 9, 30, 0, 123456, tzinfo=UTC)
TIMING = Timing(
    deadline=timedelta(days=30),
    retry_first=timedelta(seconds=10),
    retry_max=timedelta(minutes=5),
    stuck_after=timedelta(hours=1),
)
AINO = "hash-of-aino"
BO = "hash-of-bo"


def erasure(request_id: str, subject: str = AINO, at: datetime = T0) -> ErasureRequest:
    return new_erasure(request_id, subject, "misuse", "T-1", "ops", "ops-anna", at, TIMING)


def report(
    request_id: str, service: ParticipantName, at: datetime = T0, erased: int = 1
) -> ErasureReported:
    return ErasureReported(
        request_id=request_id,
        service=service,
        reported_at=at,
        erased={"things": erased},
        kept=[Retained(what="ledger lines", basis="accounting act", until="2032-12-31")],
        providers_notified=["spa-oy"] if service == "disclosure" else [],
    )


async def stored(store: ErasureStore, request_id: str) -> ErasureRequest:
    request = await store.request(request_id)
    assert request is not None
    return request


async def reported_by_all(store: ErasureStore, request_id: str) -> ErasureRequest | None:
    last = None
    for service in ERASURE_PARTICIPANTS:
        last = await store.add_report(report(request_id, service))
    return last


def ids(requests: list[ErasureRequest]) -> list[str]:
    return [request.request_id for request in requests]


# --- adding and reading -----------------------------------------------------------------------


async def test_a_request_is_kept_as_given_to_the_millisecond(database: Database) -> None:
    store = await open_store(database)
    request = erasure("req-1")
    assert await store.add(request) is None

    kept = await stored(store, "req-1")
    assert kept.model_dump(exclude={"deadline", "next_attempt_at"}) == request.model_dump(
        exclude={"deadline", "next_attempt_at"}
    )
    assert request.deadline is not None and request.next_attempt_at is not None
    assert kept.deadline == to_millis(request.deadline)
    assert kept.next_attempt_at == to_millis(request.next_attempt_at)
    assert kept.received_at.utcoffset() == timedelta(0)
    assert await store.request("no-such-request") is None


async def test_a_moment_in_another_time_zone_comes_back_in_utc(database: Database) -> None:
    store = await open_store(database)
    helsinki = timezone(timedelta(hours=2))
    await store.add(new_access("acc-1", AINO, "ops-anna", T0.astimezone(helsinki)))
    kept = await stored(store, "acc-1")
    assert kept.received_at == to_millis(T0)
    assert kept.received_at.utcoffset() == timedelta(0)


async def test_a_taken_request_id_keeps_the_first_request(database: Database) -> None:
    store = await open_store(database)
    first = erasure("req-1")
    await store.add(first)
    existing = await store.add(erasure("req-1", subject=BO, at=T0 + timedelta(hours=1)))
    assert existing is not None
    assert existing == await stored(store, "req-1")
    assert (existing.subject, existing.received_at) == (AINO, to_millis(T0))
    assert ids(await store.requests(open_only=False)) == ["req-1"]


async def test_requests_are_listed_oldest_first_ties_by_request_id(database: Database) -> None:
    store = await open_store(database)
    await store.add(erasure("req-c", at=T0 + timedelta(minutes=2)))
    await store.add(erasure("req-b", subject=BO, at=T0))
    await store.add(new_access("acc-a", AINO, "ops-anna", T0))
    # The same millisecond as req-b and acc-a, once truncated.
    await store.add(erasure("req-a", subject=BO, at=T0 + timedelta(microseconds=400)))
    assert ids(await store.requests(open_only=False)) == ["acc-a", "req-a", "req-b", "req-c"]


async def test_the_open_requests_leave_out_the_completed_and_the_answered(
    database: Database,
) -> None:
    store = await open_store(database)
    await store.add(erasure("req-done", at=T0))
    await store.add(new_access("acc-1", AINO, "ops-anna", T0 + timedelta(minutes=1)))
    await store.add(erasure("req-new", subject=BO, at=T0 + timedelta(minutes=3)))
    await store.add(erasure("req-started", at=T0 + timedelta(minutes=2)))
    await store.started("req-started", T0 + timedelta(minutes=5))
    await store.add(erasure("req-stuck", subject=BO, at=T0 + timedelta(minutes=4)))
    await store.started("req-stuck", T0 + timedelta(minutes=5))
    await store.attempted(
        "req-stuck", Attempt(2, T0 + timedelta(minutes=9), T0 + timedelta(minutes=8))
    )
    await reported_by_all(store, "req-done")
    await store.complete("req-done", T0 + timedelta(minutes=6))

    assert ids(await store.requests(open_only=True)) == ["req-started", "req-new", "req-stuck"]
    assert ids(await store.requests(open_only=False)) == [
        "req-done",
        "acc-1",
        "req-started",
        "req-new",
        "req-stuck",
    ]


async def test_a_persons_requests_oldest_first_and_nobody_elses(database: Database) -> None:
    store = await open_store(database)
    await store.add(new_access("acc-2", AINO, "ops-anna", T0 + timedelta(days=2)))
    await store.add(erasure("req-bo", subject=BO, at=T0 + timedelta(days=1)))
    await store.add(erasure("req-1", at=T0))
    await store.add(new_access("acc-1", AINO, "ops-anna", T0 + timedelta(days=1)))
    assert ids(await store.requests_of(AINO)) == ["req-1", "acc-1", "acc-2"]
    assert ids(await store.requests_of(BO)) == ["req-bo"]
    assert await store.requests_of("hash-of-nobody") == []


# --- progress -----------------------------------------------------------------------------------


async def test_due_requests_are_those_whose_next_attempt_has_come_longest_due_first(
    database: Database,
) -> None:
    store = await open_store(database)
    for request_id, seconds in (("req-late", 30), ("req-early", 10), ("req-later", 40)):
        await store.add(erasure(request_id, at=T0))
        await store.started(request_id, T0 + timedelta(seconds=seconds))
    await store.add(erasure("req-also-early", subject=BO, at=T0))
    await store.started("req-also-early", T0 + timedelta(seconds=10))
    await store.add(new_access("acc-1", AINO, "ops-anna", T0))

    assert await store.due(T0) == []
    assert ids(await store.due(T0 + timedelta(seconds=30))) == [
        "req-also-early",
        "req-early",
        "req-late",
    ]
    # A next attempt at the very moment is due.
    assert ids(await store.due(T0 + timedelta(seconds=10))) == ["req-also-early", "req-early"]


async def test_a_received_request_is_due_once_its_first_wait_is_over(database: Database) -> None:
    store = await open_store(database)
    await store.add(erasure("req-1"))
    assert await store.due(T0 + timedelta(seconds=9)) == []
    [due] = await store.due(T0 + TIMING.retry_first)
    assert (due.request_id, due.status) == ("req-1", "received")


async def test_cleared_dead_letters_add_up_and_the_first_start_stays(database: Database) -> None:
    store = await open_store(database)
    await store.add(erasure("req-1"))
    await store.cleared_dead_letters("req-1", 3, T0 + timedelta(seconds=1, microseconds=700))
    await store.cleared_dead_letters("req-1", 2, T0 + timedelta(seconds=5))
    request = await stored(store, "req-1")
    assert request.own_dead_letters == 5
    assert request.started_at == to_millis(T0 + timedelta(seconds=1, microseconds=700))

    # An earlier start (a clock set back) is the start.
    await store.cleared_dead_letters("req-1", 0, T0)
    request = await stored(store, "req-1")
    assert (request.own_dead_letters, request.started_at) == (5, to_millis(T0))

    await store.cleared_dead_letters("no-such-request", 1, T0)
    assert await store.request("no-such-request") is None


async def test_a_request_is_started_once(database: Database) -> None:
    store = await open_store(database)
    await store.add(erasure("req-1"))
    await store.started("req-1", T0 + timedelta(seconds=10))
    request = await stored(store, "req-1")
    assert (request.status, request.attempts) == ("in_progress", 1)
    assert request.next_attempt_at == to_millis(T0 + timedelta(seconds=10))

    await store.attempted("req-1", Attempt(2, T0 + timedelta(seconds=30)))
    await store.started("req-1", T0 + timedelta(seconds=99))  # a repeat after a crash
    request = await stored(store, "req-1")
    assert (request.status, request.attempts) == ("in_progress", 2)
    assert request.next_attempt_at == to_millis(T0 + timedelta(seconds=30))


async def test_an_attempt_moves_the_next_one_and_may_mark_the_request_stuck(
    database: Database,
) -> None:
    store = await open_store(database)
    await store.add(erasure("req-1"))
    await store.attempted("req-1", Attempt(5, T0 + timedelta(seconds=5)))
    assert (await stored(store, "req-1")).attempts == 0  # not started: left as it is

    await store.started("req-1", T0 + timedelta(seconds=10))
    await store.attempted("req-1", Attempt(2, T0 + timedelta(seconds=30)))
    request = await stored(store, "req-1")
    assert (request.status, request.attempts, request.stuck_since) == ("in_progress", 2, None)

    stuck_at = T0 + timedelta(hours=1, microseconds=999)
    await store.attempted("req-1", Attempt(3, T0 + timedelta(hours=2), stuck_at))
    await store.attempted("req-1", Attempt(4, T0 + timedelta(hours=3), stuck_at))
    request = await stored(store, "req-1")
    assert (request.status, request.attempts) == ("stuck", 4)
    assert request.stuck_since == to_millis(stuck_at)
    assert request.next_attempt_at == to_millis(T0 + timedelta(hours=3))


async def test_a_completed_request_takes_no_more_attempts(database: Database) -> None:
    store = await open_store(database)
    await store.add(erasure("req-1"))
    await store.started("req-1", T0 + timedelta(seconds=10))
    await reported_by_all(store, "req-1")
    completed = await store.complete("req-1", T0 + timedelta(seconds=20))
    await store.attempted(
        "req-1", Attempt(2, T0 + timedelta(seconds=40), T0 + timedelta(seconds=30))
    )
    assert await store.request("req-1") == completed
    assert await store.due(T0 + timedelta(days=365)) == []


# --- reports and completion ---------------------------------------------------------------------


async def test_a_participants_first_report_counts_and_a_repeat_changes_nothing(
    database: Database,
) -> None:
    store = await open_store(database)
    await store.add(erasure("req-1"))
    first = report("req-1", "orders", at=T0 + timedelta(seconds=3, microseconds=250))
    after = await store.add_report(first)
    assert after is not None and after == await stored(store, "req-1")
    assert after.pending == [name for name in ERASURE_PARTICIPANTS if name != "orders"]
    assert after.reports == {
        "orders": first.model_copy(update={"reported_at": to_millis(first.reported_at)})
    }

    repeat = report("req-1", "orders", at=T0 + timedelta(seconds=9), erased=7)
    assert await store.add_report(repeat) is None
    assert await stored(store, "req-1") == after
    assert await store.add_report(report("no-such-request", "orders")) is None
    assert await store.request("no-such-request") is None


async def test_a_request_completes_only_once_nobody_is_missing(database: Database) -> None:
    store = await open_store(database)
    await store.add(erasure("req-1"))
    await store.cleared_dead_letters("req-1", 2, T0 + timedelta(seconds=1))
    await store.started("req-1", T0 + timedelta(seconds=10))
    await store.attempted("req-1", Attempt(2, T0 + timedelta(hours=2), T0 + timedelta(hours=1)))
    await store.add_report(report("req-1", "orders"))
    assert await store.complete("req-1", T0 + timedelta(hours=1)) is None
    assert (await stored(store, "req-1")).status == "stuck"

    last = await reported_by_all(store, "req-1")
    assert last is not None and last.pending == []
    done_at = T0 + timedelta(hours=1, seconds=5)
    completed = await store.complete("req-1", done_at)
    assert completed is not None and completed == await stored(store, "req-1")
    assert completed.status == "completed"
    assert completed.completed_at == to_millis(done_at)
    assert (completed.next_attempt_at, completed.stuck_since) == (None, None)
    assert (completed.own_dead_letters, completed.attempts) == (2, 2)
    assert set(completed.reports) == set(ERASURE_PARTICIPANTS)

    assert await store.complete("req-1", done_at + timedelta(seconds=1)) is None
    assert await store.requests(open_only=True) == []
    assert await store.complete("no-such-request", done_at) is None


async def test_an_access_request_is_never_completed(database: Database) -> None:
    store = await open_store(database)
    await store.add(new_access("acc-1", AINO, "ops-anna", T0))
    assert await store.complete("acc-1", T0) is None
    assert (await stored(store, "acc-1")).status == "answered"


# --- at the same time ---------------------------------------------------------------------------


async def test_concurrent_reports_of_different_participants_all_land(database: Database) -> None:
    store = await open_store(database)
    await store.add(erasure("req-1"))
    await store.started("req-1", T0 + timedelta(seconds=10))
    results = await asyncio.gather(
        *(store.add_report(report("req-1", service)) for service in ERASURE_PARTICIPANTS)
    )
    assert all(result is not None for result in results)
    request = await stored(store, "req-1")
    assert request.pending == []
    assert set(request.reports) == set(ERASURE_PARTICIPANTS)


async def test_the_same_report_delivered_twice_at_once_lands_once(database: Database) -> None:
    store = await open_store(database)
    await store.add(erasure("req-1"))
    first = report("req-1", "consent", erased=1)
    second = report("req-1", "consent", erased=2)
    results = await asyncio.gather(store.add_report(first), store.add_report(second))
    [taken] = [result for result in results if result is not None]
    assert taken == await stored(store, "req-1")
    assert "consent" not in taken.pending
    assert taken.reports["consent"].erased in ({"things": 1}, {"things": 2})


async def test_of_two_completions_at_once_exactly_one_returns_the_request(
    database: Database,
) -> None:
    store = await open_store(database)
    await store.add(erasure("req-1"))
    await store.started("req-1", T0 + timedelta(seconds=10))
    await reported_by_all(store, "req-1")
    results = await asyncio.gather(
        store.complete("req-1", T0 + timedelta(seconds=20)),
        store.complete("req-1", T0 + timedelta(seconds=21)),
    )
    [completed] = [result for result in results if result is not None]
    assert completed == await stored(store, "req-1")
    assert completed.status == "completed"
