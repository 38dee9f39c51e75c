"""The retention policy, without a broker or a database: each category's period, the day it
ends for a record, the cut-off a sweep queries with, the settings, and `rekisteri retention
show`."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from rekisteri.cli import main
from shared.retention import FINNISH_WINTER_TIME, ledger_kept_until
from shared.retention_policy import (
    Category,
    Period,
    RetentionSettings,
    Unit,
    add_months,
    policy_from_environment,
    retention_policy,
)

SETTINGS = (
    "BUYER_MONTHS",
    "RECIPIENT_MONTHS",
    "HELD_DISCLOSURE_DAYS",
    "DEAD_LETTER_DAYS",
    "DEAD_LETTER_WARN_DAYS",
    "AUDIT_LOG_YEARS",
    "ERASURE_RECORD_YEARS",
)
POLICY = retention_policy(RetentionSettings.model_construct())


@pytest.fixture(autouse=True)
def no_retention_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SETTINGS:
        monkeypatch.delenv(f"RETENTION_{name}", raising=False)


def helsinki_noon(day: date) -> datetime:
    """Noon in Helsinki on `day` (10:00 UTC in winter time): no doubt which day it is."""
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=UTC)


# --- the defaults ----------------------------------------------------------------------------


def test_the_defaults_are_those_the_docs_give() -> None:
    policy = policy_from_environment()
    periods = {r.category: (r.period.amount, r.period.unit) for r in policy}
    assert periods == {
        Category.BUYER: (36, Unit.MONTHS),
        Category.RECIPIENT: (24, Unit.MONTHS),
        Category.LEDGER: (6, Unit.YEARS_AFTER_YEAR_END),
        Category.DISCLOSURE_LOG: (6, Unit.YEARS_AFTER_YEAR_END),
        Category.HELD_DISCLOSURE: (30, Unit.DAYS),
        Category.DEAD_LETTER: (30, Unit.DAYS),
        Category.AUDIT_LOG: (6, Unit.YEARS_AFTER_YEAR_END),
        Category.ERASURE_RECORD: (6, Unit.YEARS_AFTER_YEAR_END),
    }
    assert policy[Category.DEAD_LETTER].warn_after == Period(7, Unit.DAYS)


# --- month arithmetic ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2027, 1, 31), 1, date(2027, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),  # a leap year
        (date(2027, 3, 31), 1, date(2027, 4, 30)),
        (date(2028, 2, 29), 36, date(2031, 2, 28)),
        (date(2027, 11, 30), 3, date(2028, 2, 29)),
        (date(2026, 12, 15), 1, date(2027, 1, 15)),
        (date(2027, 3, 31), -1, date(2027, 2, 28)),
    ],
)
def test_a_month_later_is_the_same_day_or_the_last_day_of_a_shorter_month(
    day: date, months: int, expected: date
) -> None:
    assert add_months(day, months) == expected


def test_the_day_of_an_event_is_its_day_in_finland() -> None:
    recipient = POLICY[Category.RECIPIENT]
    # 22:30 UTC on 31 January is already 00:30 on 1 February in Helsinki.
    assert recipient.ends_on(datetime(2027, 1, 31, 22, 30, tzinfo=UTC)) == date(2029, 2, 1)
    assert recipient.ends_on(datetime(2027, 1, 31, 21, 59, tzinfo=UTC)) == date(2029, 1, 31)
    # In summer the register counts in winter time: the hour after midnight (21:00-22:00 UTC)
    # is still the day before, so retention ends a day early, never late.
    assert recipient.ends_on(datetime(2027, 6, 30, 21, 30, tzinfo=UTC)) == date(2029, 6, 30)


# --- each category ---------------------------------------------------------------------------


def test_a_dead_letter_is_warned_of_from_day_7_and_deleted_after_day_30() -> None:
    dead_letter = POLICY[Category.DEAD_LETTER]
    set_aside = helsinki_noon(date(2027, 3, 1))
    assert not dead_letter.warned(set_aside, as_of=date(2027, 3, 7))
    assert dead_letter.warned(set_aside, as_of=date(2027, 3, 8))
    assert not dead_letter.expired(set_aside, as_of=date(2027, 3, 31))
    assert dead_letter.expired(set_aside, as_of=date(2027, 4, 1))
    assert not POLICY[Category.HELD_DISCLOSURE].warned(set_aside, as_of=date(2030, 1, 1))


YEAR_END = (
    Category.LEDGER,
    Category.DISCLOSURE_LOG,
    Category.AUDIT_LOG,
    Category.ERASURE_RECORD,
)


@pytest.mark.parametrize(
    ("category", "buyer_months", "start", "last_day"),
    [
        (Category.BUYER, 1, date(2027, 1, 31), date(2027, 2, 28)),
        (Category.BUYER, None, date(2026, 11, 24), date(2029, 11, 24)),
        (Category.HELD_DISCLOSURE, None, date(2027, 1, 1), date(2027, 1, 31)),
        *((category, None, date(2026, 6, 1), date(2032, 12, 31)) for category in YEAR_END),
    ],
    ids=[
        "a buyer last seen on 31 January, on a one-month policy: to the end of February",
        "a buyer: 36 months after their last order or consent event",
        "a held disclosure: 30 days",
        *(f"{category.value}: to 31 December of the sixth year" for category in YEAR_END),
    ],
)
def test_a_record_is_kept_through_its_last_day_and_expires_the_day_after(
    category: Category, buyer_months: int | None, start: date, last_day: date
) -> None:
    """On the default policy, or on one whose buyers are kept `buyer_months`."""
    policy = (
        retention_policy(RetentionSettings(buyer_months=buyer_months)) if buyer_months else POLICY
    )
    retention = policy[category]
    started = helsinki_noon(start)
    assert retention.ends_on(started) == last_day
    assert not retention.expired(started, as_of=last_day)
    assert retention.expired(started, as_of=last_day + timedelta(days=1))


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
    )
)
def test_the_ledger_category_ends_when_the_ledger_functions_say(placed_at: datetime) -> None:
    assert POLICY[Category.LEDGER].ends_on(placed_at) == ledger_kept_until(placed_at)


# --- the cut-off a sweep queries with --------------------------------------------------------

PERIODS = st.one_of(
    st.builds(Period, st.integers(1, 60), st.just(Unit.MONTHS)),
    st.builds(Period, st.integers(1, 400), st.just(Unit.DAYS)),
    st.builds(Period, st.integers(1, 10), st.just(Unit.YEARS_AFTER_YEAR_END)),
)


@given(
    PERIODS,
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2080, 1, 1), timezones=st.just(UTC)
    ),
    st.dates(min_value=date(2000, 1, 1), max_value=date(2095, 1, 1)),
)
def test_what_started_before_the_cut_off_is_exactly_what_has_expired(
    period: Period, start: datetime, as_of: date
) -> None:
    retention = replace(POLICY[Category.BUYER], period=period)
    assert (start < retention.expired_before(as_of)) == retention.expired(start, as_of)


@given(
    PERIODS,
    st.dates(min_value=date(2010, 1, 1), max_value=date(2080, 1, 1)),
    st.integers(-4, 4),
    st.times(),
)
def test_the_cut_off_is_exact_around_the_period_boundary(
    period: Period, as_of: date, days_off: int, at: time
) -> None:
    # Starts a few days either side of one period before `as_of`, where month ends fold.
    retention = replace(POLICY[Category.BUYER], period=period)
    near = add_months(as_of, -period.amount) if period.unit is Unit.MONTHS else as_of
    start_day = (
        near
        + timedelta(days=days_off)
        - timedelta(days=period.amount if period.unit is Unit.DAYS else 0)
    )
    start = datetime.combine(start_day, at, FINNISH_WINTER_TIME)
    assert (start < retention.expired_before(as_of)) == retention.expired(start, as_of)


def test_the_cut_off_at_a_month_end_keeps_every_day_that_ends_on_it() -> None:
    one_month = retention_policy(RetentionSettings(buyer_months=1))[Category.BUYER]
    # 28, 29, 30 and 31 January + 1 month all end on 28 February 2027: all kept that day.
    cut_off = one_month.expired_before(date(2027, 2, 28))
    assert cut_off == datetime(2027, 1, 27, 22, 0, tzinfo=UTC)  # 28 January, 00:00 in Helsinki
    assert one_month.expired_before(date(2027, 3, 1)) == datetime(2027, 1, 31, 22, 0, tzinfo=UTC)
    # Nothing + 1 month ends on 29-31 March: 28 February ends on 28 March, 1 March on 1 April.
    assert one_month.expired_before(date(2027, 3, 31)) == datetime(2027, 2, 28, 22, 0, tzinfo=UTC)


# --- settings --------------------------------------------------------------------------------


def test_every_period_but_the_ledgers_is_read_from_its_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = dict(zip(SETTINGS, ("48", "12", "14", "21", "3", "3", "10"), strict=True))
    for name, value in values.items():
        monkeypatch.setenv(f"RETENTION_{name}", value)
    policy = policy_from_environment()
    assert {r.category: r.period.amount for r in policy} == {
        Category.BUYER: 48,
        Category.RECIPIENT: 12,
        Category.LEDGER: 6,
        Category.DISCLOSURE_LOG: 6,
        Category.HELD_DISCLOSURE: 14,
        Category.DEAD_LETTER: 21,
        Category.AUDIT_LOG: 3,
        Category.ERASURE_RECORD: 10,
    }
    assert policy[Category.DEAD_LETTER].warn_after == Period(3, Unit.DAYS)
    assert {r.setting for r in policy} - {None} == {f"RETENTION_{name}" for name in SETTINGS} - {
        "RETENTION_DEAD_LETTER_WARN_DAYS"
    }


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("DEAD_LETTER_WARN_DAYS", "30", "RETENTION_DEAD_LETTER_WARN_DAYS must be less than"),
        ("ERASURE_RECORD_YEARS", "3", "RETENTION_ERASURE_RECORD_YEARS"),
        ("BUYER_MONTHS", "0", "RETENTION_BUYER_MONTHS"),
        ("HELD_DISCLOSURE_DAYS", "a month", "RETENTION_HELD_DISCLOSURE_DAYS"),
    ],
)
def test_a_wrong_setting_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, named: str
) -> None:
    monkeypatch.setenv(f"RETENTION_{name}", value)
    with pytest.raises(ValueError, match=named):
        policy_from_environment()


# --- the texts -------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["fi", "en"])
def test_every_category_is_described_with_its_period_filled_in(language: str) -> None:
    for retention in POLICY:
        texts = retention.describe(language)  # type: ignore[arg-type]
        assert all(texts.values()), retention.category
        assert not any("{" in text for text in texts.values()), retention.category
        assert texts["period"] in texts["rule"]
    assert POLICY[Category.BUYER].describe("fi")["rule"].startswith("36 kuukautta")
    assert "7 days" in POLICY[Category.DEAD_LETTER].describe("en")["at_end"]


# --- rekisteri retention show ----------------------------------------------------------------


def test_retention_show_prints_the_policy_the_tool_runs_with() -> None:
    shown = CliRunner().invoke(main, ["retention", "show", "--json"])
    assert shown.exit_code == 0, shown.output
    rows = {row["category"]: row for row in json.loads(shown.stdout)}
    assert list(rows) == [str(category) for category in Category]
    assert rows["buyer"]["period"] == {"amount": 36, "unit": "months"}
    assert rows["buyer"]["starts"] == "the buyer's last order or consent event"
    assert rows["ledger"]["basis"] == "Finnish Accounting Act 1336/1997 ch. 2 §10"
    assert rows["ledger"]["setting"] is None
    assert rows["dead-letter"]["warn_after"] == {"amount": 7, "unit": "days"}

    changed = CliRunner().invoke(
        main, ["retention", "show", "--language", "fi"], env={"RETENTION_BUYER_MONTHS": "48"}
    )
    assert changed.exit_code == 0, changed.output
    assert "buyer: Ostajan henkilö- ja osoitetiedot" in changed.output
    assert "period  48 kuukautta" in changed.output


def test_retention_show_refuses_a_wrong_setting_by_name() -> None:
    refused = CliRunner().invoke(
        main, ["retention", "show"], env={"RETENTION_DEAD_LETTER_DAYS": "5"}
    )
    assert refused.exit_code == 1
    assert "RETENTION_DEAD_LETTER_WARN_DAYS must be less than RETENTION_DEAD_LETTER_DAYS" in (
        refused.output
    )


def test_a_day_in_the_policy_is_a_day_not_a_24_hour_span() -> None:
    # Held at 23:59 on 1 January and at 00:01 on 1 January: the same day, the same end.
    held = POLICY[Category.HELD_DISCLOSURE]
    late = datetime(2027, 1, 1, 21, 59, tzinfo=UTC)
    early = late - timedelta(hours=23, minutes=58)
    assert held.ends_on(late) == held.ends_on(early) == date(2027, 1, 31)
