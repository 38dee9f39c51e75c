"""The rules of erasure, without a broker or a database: retention of the ledger, tombstones,
erasure notices, the erasure service's timing and receipt, finding a person in a dead letter."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import get_args

from services.disclosure.domain import unnamed_entry_kept_until
from services.erasure.domain import (
    ErasureRequest,
    Timing,
    is_stuck,
    new_erasure,
    next_check,
    receipt,
    view,
)
from services.orders.domain import order_from_event, profiles_from_order, without_people
from shared.contracts.disclosures import erasure_notice_id_for
from shared.contracts.erasure import ErasureReported, ParticipantName, Retained
from shared.contracts.fields import CLOCK_SKEW
from shared.dead_letters import mentions_subject
from shared.erasure.tombstone import Tombstone
from shared.retention import expired_before, ledger_kept_until
from shared.topology import ERASURE_PARTICIPANTS
from tests.factories import order_placed
from tests.unit.support import HASHER, NOW, order_event

TIMING = Timing(
    deadline=timedelta(days=30),
    retry_first=timedelta(minutes=1),
    retry_max=timedelta(minutes=10),
    stuck_after=timedelta(hours=1),
)


# --- the ledger's retention ------------------------------------------------------------------


def test_ledger_lines_are_kept_to_the_end_of_the_sixth_year_after_the_financial_year() -> None:
    assert ledger_kept_until(datetime(2026, 11, 24, 18, 5, tzinfo=UTC)) == date(2032, 12, 31)
    assert ledger_kept_until(datetime(2026, 1, 1, 0, 0, tzinfo=UTC)) == date(2032, 12, 31)


def test_the_financial_year_of_an_order_is_decided_in_finnish_time() -> None:
    # 23:30 UTC on New Year's Eve is already 01:30 on New Year's Day in Helsinki.
    assert ledger_kept_until(datetime(2026, 12, 31, 23, 30, tzinfo=UTC)) == date(2033, 12, 31)
    assert ledger_kept_until(datetime(2026, 12, 31, 21, 59, tzinfo=UTC)) == date(2032, 12, 31)


def test_an_order_without_its_people_keeps_its_ledger_and_says_why() -> None:
    event = order_event()
    order = order_from_event(event, HASHER, NOW)
    stripped = without_people(order, {"buyer"}, ["req-1"])
    assert stripped.buyer is None and stripped.buyer_subject is None
    assert stripped.recipient == order.recipient and stripped.lines == order.lines
    assert stripped.retention is not None and stripped.retention["until"].endswith("-12-31")
    assert stripped.erasures == ["req-1"]
    assert [p.role for p in profiles_from_order(stripped)] == ["recipient"]
    assert stripped.kept_until is None, "it still holds the recipient's data"
    unnamed = without_people(order, {"buyer", "recipient"}, ["req-1"])
    assert unnamed.kept_until == stripped.retention["until"]


def test_a_sweep_deletes_what_was_kept_to_a_day_before_its_own_in_finnish_time() -> None:
    assert expired_before(datetime(2032, 12, 31, 21, 59, tzinfo=UTC)) == "2032-12-31"
    # 22:00 UTC on New Year's Eve is midnight in Helsinki: the last day kept is over.
    assert expired_before(datetime(2032, 12, 31, 22, 0, tzinfo=UTC)) == "2033-01-01"


def test_a_disclosure_log_entry_is_kept_as_long_as_its_orders_ledger_once_it_names_nobody() -> None:
    assert unnamed_entry_kept_until(["erased:req-1", "erased:req-2"], NOW) == "2032-12-31"
    assert unnamed_entry_kept_until(["erased:req-1", "a1b2"], NOW) is None
    assert unnamed_entry_kept_until(["erased:req-1"], None) is None


# --- tombstones ------------------------------------------------------------------------------


def test_a_tombstone_buries_what_may_have_happened_before_the_erasure_and_not_after() -> None:
    tombstone = Tombstone("subject", NOW, ("req-1",))
    assert tombstone.buries(NOW - timedelta(seconds=1))
    assert tombstone.buries(NOW)
    # The web shop's clock may run up to CLOCK_SKEW ahead of the erasure service's.
    assert tombstone.buries(NOW + CLOCK_SKEW)
    assert not tombstone.buries(NOW + CLOCK_SKEW + timedelta(milliseconds=1))


# --- erasure notices -------------------------------------------------------------------------


def test_the_participants_of_an_erasure_are_named_once() -> None:
    assert get_args(ParticipantName) == ERASURE_PARTICIPANTS


def test_an_erasure_notice_has_one_id_per_request_and_provider() -> None:
    first = erasure_notice_id_for("req-1", "spa-oy")
    assert first == erasure_notice_id_for("req-1", "spa-oy")
    assert first != erasure_notice_id_for("req-1", "kart-oy")
    assert first != erasure_notice_id_for("req-2", "spa-oy")


# --- the erasure service's timing ------------------------------------------------------------


def erasure(**changes: object) -> ErasureRequest:
    request = new_erasure("req-1", "a" * 64, "subject-request", None, "ops", "anna", NOW, TIMING)
    return request.model_copy(update=changes)


def test_a_silent_service_is_asked_again_after_doubling_waits() -> None:
    delays = [TIMING.retry_delay(attempts) for attempts in range(1, 7)]
    assert delays == [timedelta(minutes=m) for m in (1, 2, 4, 8, 10, 10)]


def test_the_next_check_comes_no_later_than_the_moment_the_request_is_stuck() -> None:
    request = erasure(status="in_progress", started_at=NOW, attempts=6)
    just_before = NOW + timedelta(minutes=55)
    assert next_check(request, 7, just_before, TIMING) == NOW + timedelta(hours=1)
    assert not is_stuck(request, just_before, TIMING)
    assert is_stuck(request, NOW + timedelta(hours=1), TIMING)
    assert not is_stuck(request.model_copy(update={"pending": []}), NOW + timedelta(days=1), TIMING)


def test_an_open_request_past_its_deadline_is_overdue() -> None:
    request = erasure(status="stuck")
    assert request.deadline == NOW + timedelta(days=30)
    assert not view(request, NOW + timedelta(days=29)).overdue
    late = view(request, NOW + timedelta(days=31))
    assert late.overdue and late.missing == ["orders", "consent", "disclosure"]


def report(service: str, providers: list[str] | None = None) -> ErasureReported:
    return ErasureReported(
        request_id="req-1",
        service=service,  # type: ignore[arg-type]
        reported_at=NOW + timedelta(minutes=1),
        erased={"things": 1},
        kept=[Retained(what="ledger", basis="law", until="2032-12-31", order_ids=["KK-1"])],
        providers_notified=providers or [],
    )


def test_the_receipt_tells_per_service_what_went_and_what_stays_and_names_nobody() -> None:
    assert receipt(erasure()) is None
    completed = erasure(
        status="completed",
        pending=[],
        started_at=NOW,
        completed_at=NOW + timedelta(minutes=2),
        own_dead_letters=1,
        reports={
            "orders": report("orders"),
            "consent": report("consent"),
            "disclosure": report("disclosure", ["spa-oy", "kart-oy"]),
        },
    )
    made = receipt(completed)
    assert made is not None
    assert set(made.services) == {"orders", "consent", "disclosure", "erasure"}
    assert made.providers_notified == ["kart-oy", "spa-oy"]
    assert made.services["erasure"].erased == {"dead letters": 1}
    assert "a" * 64 not in made.model_dump_json()
    assert view(completed, NOW).missing == []


# --- a person in a dead letter ---------------------------------------------------------------


def test_a_dead_letter_names_a_person_by_any_spelling_of_their_email_or_by_their_hash() -> None:
    subject = HASHER("aino.virtanen@example.fi")
    order = order_placed(
        buyer={"first_name": "A", "last_name": "V", "email": "AINO.Virtanen@Example.FI"}
    )
    assert mentions_subject(json.dumps(order).encode(), subject, HASHER)
    assert mentions_subject(json.dumps({"subject": subject}).encode(), subject, HASHER)
    assert not mentions_subject(json.dumps(order_placed()).encode(), subject, HASHER)
    assert not mentions_subject(b"\xff not json aino.virtanen@example.fi", subject, HASHER)
