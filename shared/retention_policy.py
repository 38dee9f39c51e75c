"""The register's retention policy: per category of data, how long it is kept, from what, and
why (GDPR Art. 5(1)(e), storage limitation). Pure: no clock, and no I/O but reading its own
wording once; every answer takes the moment it is asked about.

Each period but the ledger's is a setting (`RetentionSettings`, env `RETENTION_*`) with the
default docs/retention.md argues for; the ledger's six years are the Accounting Act's, not a
choice (`shared.retention`). The services' daily sweeps, `rekisteri retention`, the access
report and the register description all read the policy from here, so the four services and
the tool must run with the same settings. The policy's wording, in Finnish and in English, is
data beside this module (retention_policy.toml); the periods and which setting sets each are
here.

A day is a date in Finnish winter time (UTC+2) all year round, as for the ledger
(`shared.retention`): in summer an event in the hour after midnight counts for the day
before, which ends its retention a day earlier, never later, and needs no time-zone database.
A retention "ends on" the last day the data is kept; a sweep on any later day deletes it.
"""

from __future__ import annotations

import calendar
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from functools import cache
from importlib.resources import files
from typing import Annotated, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.retention import FINNISH_WINTER_TIME, RETENTION_BASIS, RETENTION_YEARS

Language = Literal["fi", "en"]
LANGUAGES: tuple[Language, ...] = ("fi", "en")


@dataclass(frozen=True)
class Bilingual:
    """A text in Finnish and in English; `{period}` and `{warn}` are filled in by the policy."""

    fi: str
    en: str

    def in_(self, language: Language) -> str:
        return self.fi if language == "fi" else self.en


class Unit(StrEnum):
    DAYS = "days"
    MONTHS = "months"
    # Whole calendar years after the end of the start's year: kept to 31 December.
    YEARS_AFTER_YEAR_END = "years after the end of the year"


_UNIT_WORDS: Mapping[Unit, Mapping[Language, tuple[str, str]]] = {
    Unit.DAYS: {"fi": ("päivä", "päivää"), "en": ("day", "days")},
    Unit.MONTHS: {"fi": ("kuukausi", "kuukautta"), "en": ("month", "months")},
    Unit.YEARS_AFTER_YEAR_END: {"fi": ("vuosi", "vuotta"), "en": ("year", "years")},
}


def finnish_date(moment: datetime) -> date:
    """The day `moment` falls on, as the policy counts days."""
    return moment.astimezone(FINNISH_WINTER_TIME).date()


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(0), FINNISH_WINTER_TIME)


def add_months(day: date, months: int) -> date:
    """`day` moved by whole months; a day the target month lacks becomes its last day
    (31 January + 1 month is 28 or 29 February)."""
    year, month_index = divmod(day.month - 1 + months, 12)
    year += day.year
    last = calendar.monthrange(year, month_index + 1)[1]
    return date(year, month_index + 1, min(day.day, last))


@dataclass(frozen=True)
class Period:
    amount: int
    unit: Unit

    def last_day(self, start_day: date) -> date:
        """The last day kept of something that started on `start_day`."""
        if self.unit is Unit.DAYS:
            return start_day + timedelta(days=self.amount)
        if self.unit is Unit.MONTHS:
            return add_months(start_day, self.amount)
        return date(start_day.year + self.amount, 12, 31)

    def first_kept_day(self, as_of: date) -> date:
        """The earliest start day still kept on `as_of`: whatever started on an earlier day
        has expired. The inverse of `last_day`, which never decreases as its start grows."""
        if self.unit is Unit.DAYS:
            return as_of - timedelta(days=self.amount)
        if self.unit is Unit.YEARS_AFTER_YEAR_END:
            return date(as_of.year - self.amount, 1, 1)
        # Month ends fold several start days onto one last day (29, 30, 31 January + 1 month
        # all end on 28 February) and leave some days no start ends on (nothing + 1 month ends
        # on 29-31 March): the naive inverse is never too late, but may be up to three days
        # early, so step on to the first start day that is still kept on `as_of`.
        day = add_months(as_of, -self.amount)
        while self.last_day(day) < as_of:
            day += timedelta(days=1)
        return day

    def describe(self, language: Language) -> str:
        """`36 months`, `36 kuukautta`; `1 day`, `1 päivä`."""
        singular, plural = _UNIT_WORDS[self.unit][language]
        return f"{self.amount} {singular if self.amount == 1 else plural}"

    def as_json(self) -> dict[str, object]:
        return {"amount": self.amount, "unit": str(self.unit)}


class Category(StrEnum):
    BUYER = "buyer"
    RECIPIENT = "recipient"
    LEDGER = "ledger"
    DISCLOSURE_LOG = "disclosure-log"
    HELD_DISCLOSURE = "held-disclosure"
    DEAD_LETTER = "dead-letter"
    AUDIT_LOG = "audit-log"
    ERASURE_RECORD = "erasure-record"


@dataclass(frozen=True)
class Retention:
    """One category's rule: `rule` says how long (`36 months after the order`), `at_end` what
    then happens (`deleted`); both may hold `{period}` and `{warn}`."""

    category: Category
    period: Period
    what: Bilingual
    starts: Bilingual
    rule: Bilingual
    at_end: Bilingual
    basis: Bilingual
    # The environment variable that sets the period; None where the law fixes it.
    setting: str | None = None
    # Dead letters only: from when `rekisteri status` warns that one is waiting.
    warn_after: Period | None = None

    def ends_on(self, start: datetime) -> date:
        """The last day this category's data that started at `start` is kept."""
        return self.period.last_day(finnish_date(start))

    def expired(self, start: datetime, as_of: date) -> bool:
        """Whether a sweep on day `as_of` deletes data that started at `start`."""
        return self.ends_on(start) < as_of

    def expired_before(self, as_of: date) -> datetime:
        """The cut-off a sweep on day `as_of` queries with: data that started before this
        moment has expired, data that started at or after it is kept."""
        return _start_of(self.period.first_kept_day(as_of))

    def warned(self, start: datetime, as_of: date) -> bool:
        """Whether something that started at `start` is, on day `as_of`, old enough to be
        warned of (never, for a category without a warning)."""
        if self.warn_after is None:
            return False
        return finnish_date(start) + timedelta(days=self.warn_after.amount) <= as_of

    def _fill(self, text: Bilingual, language: Language) -> str:
        warn = self.warn_after.describe(language) if self.warn_after else ""
        return text.in_(language).format(period=self.period.describe(language), warn=warn)

    def describe(self, language: Language) -> dict[str, str]:
        """The human texts, filled in: what, period, starts, rule, at_end, basis."""
        return {
            "what": self.what.in_(language),
            "period": self.period.describe(language),
            "starts": self.starts.in_(language),
            "rule": self._fill(self.rule, language),
            "at_end": self._fill(self.at_end, language),
            "basis": self.basis.in_(language),
        }


@dataclass(frozen=True)
class RetentionPolicy:
    """Every category's retention, in the order the policy lists them."""

    retentions: tuple[Retention, ...]

    def __getitem__(self, category: Category | str) -> Retention:
        for retention in self.retentions:
            if retention.category == category:
                return retention
        raise KeyError(category)

    def __iter__(self) -> Iterator[Retention]:
        return iter(self.retentions)


# The periods the controller may set, bounded by their unit.
Months = Annotated[int, Field(ge=1, le=1200)]
Days = Annotated[int, Field(ge=1, le=3650)]
Years = Annotated[int, Field(ge=1, le=100)]


class RetentionSettings(BaseSettings):
    """Every period the controller may choose, from `RETENTION_<FIELD>`; docs/retention.md
    says why each default is what it is."""

    model_config = SettingsConfigDict(
        env_prefix="RETENTION_",
        extra="ignore",
        frozen=True,
        use_attribute_docstrings=True,
        # Compose passes `${RETENTION_...:-}` through: left empty in .env, the default holds.
        env_ignore_empty=True,
    )

    buyer_months: Months = 36
    """A buyer's data, consents and order history: months after their last order or consent
    event."""
    recipient_months: Months = 24
    """A recipient's data: months after the order."""
    held_disclosure_days: Days = 30
    """A held disclosure not released: days before it is cancelled and its copy of the data
    deleted."""
    dead_letter_days: Days = 30
    """A dead letter: days before it is deleted."""
    dead_letter_warn_days: Days = 7
    """A dead letter: days after which `rekisteri status` warns of it."""
    audit_log_years: Years = RETENTION_YEARS
    """An audit log entry: years after the end of its year."""
    # A receipt says which ledger lines were kept and why: it must last as long as they.
    erasure_record_years: Annotated[Years, Field(ge=RETENTION_YEARS)] = RETENTION_YEARS
    """An erasure or access request and its receipt: years after the end of the year it was
    received; at least the ledger's."""

    @model_validator(mode="after")
    def _warn_before_deleting(self) -> RetentionSettings:
        if self.dead_letter_warn_days >= self.dead_letter_days:
            raise ValueError(
                "RETENTION_DEAD_LETTER_WARN_DAYS must be less than RETENTION_DEAD_LETTER_DAYS"
            )
        return self


def describe_settings_error(error: ValidationError, env_prefix: str = "RETENTION_") -> str:
    """Which settings (environment variables) are wrong, and the rule each breaks; never the
    value given."""
    problems = []
    for problem in error.errors(include_input=False):
        names = [str(part) for part in problem["loc"] if isinstance(part, str)]
        prefix = f"{env_prefix}{names[0].upper()} " if names else ""
        problems.append(f"{prefix}{problem['msg'].removeprefix('Value error, ')}")
    return "; ".join(problems)


def policy_from_environment() -> RetentionPolicy:
    """The policy with the periods in the environment (`RETENTION_*`); a wrong setting raises
    `ValueError` naming it and the rule it breaks."""
    try:
        settings = RetentionSettings()
    except ValidationError as error:
        raise ValueError(f"retention settings: {describe_settings_error(error)}") from None
    return retention_policy(settings)


LEDGER_BASIS = Bilingual(fi="kirjanpitolaki (1336/1997) 2 luku 10 §", en=RETENTION_BASIS)
_WORDING = "retention_policy.toml"
_TEXTS = ("what", "starts", "rule", "at_end", "basis")


@dataclass(frozen=True)
class _PeriodSource:
    """Where a category's period comes from: a field of `RetentionSettings` (set by
    `RETENTION_<FIELD>`), or None for the ledger's years, which the law fixes."""

    unit: Unit
    field: str | None = None

    @property
    def setting(self) -> str | None:
        return None if self.field is None else f"RETENTION_{self.field.upper()}"

    def period(self, settings: RetentionSettings) -> Period:
        amount = RETENTION_YEARS if self.field is None else getattr(settings, self.field)
        return Period(amount, self.unit)


_PERIODS: Mapping[Category, _PeriodSource] = {
    Category.BUYER: _PeriodSource(Unit.MONTHS, "buyer_months"),
    Category.RECIPIENT: _PeriodSource(Unit.MONTHS, "recipient_months"),
    Category.LEDGER: _PeriodSource(Unit.YEARS_AFTER_YEAR_END),
    Category.DISCLOSURE_LOG: _PeriodSource(Unit.YEARS_AFTER_YEAR_END),
    Category.HELD_DISCLOSURE: _PeriodSource(Unit.DAYS, "held_disclosure_days"),
    Category.DEAD_LETTER: _PeriodSource(Unit.DAYS, "dead_letter_days"),
    Category.AUDIT_LOG: _PeriodSource(Unit.YEARS_AFTER_YEAR_END, "audit_log_years"),
    Category.ERASURE_RECORD: _PeriodSource(Unit.YEARS_AFTER_YEAR_END, "erasure_record_years"),
}
# Every period but the ledger's is a setting: a misspelt field fails at import, not in a sweep.
if (
    unknown := {source.field for source in _PERIODS.values()}
    - {None}
    - set(RetentionSettings.model_fields)
):
    raise ImportError(f"retention periods name no setting: {sorted(map(str, unknown))}")


@cache
def _wording() -> Mapping[Category, Mapping[str, Bilingual]]:
    """Each category's texts (`_TEXTS`), from the policy's wording beside this module."""
    document = tomllib.loads(files("shared").joinpath(_WORDING).read_text(encoding="utf-8"))
    common = {name: Bilingual(**text) for name, text in document.pop("common").items()}
    common["ledger-basis"] = LEDGER_BASIS

    def text(value: str | dict[str, str]) -> Bilingual:
        return common[value] if isinstance(value, str) else Bilingual(**value)

    return {
        category: {name: text(document[category][name]) for name in _TEXTS} for category in Category
    }


def retention_policy(settings: RetentionSettings) -> RetentionPolicy:
    """The policy with the periods of `settings`, in the order of `Category`."""
    dead_letter_warning = Period(settings.dead_letter_warn_days, Unit.DAYS)

    def retention(category: Category) -> Retention:
        texts = _wording()[category]
        return Retention(
            category,
            period=_PERIODS[category].period(settings),
            what=texts["what"],
            starts=texts["starts"],
            rule=texts["rule"],
            at_end=texts["at_end"],
            basis=texts["basis"],
            setting=_PERIODS[category].setting,
            warn_after=dead_letter_warning if category is Category.DEAD_LETTER else None,
        )

    return RetentionPolicy(tuple(retention(category) for category in Category))
