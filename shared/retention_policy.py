"""The register's retention policy: per category of data, how long it is kept, from what, and
why (GDPR Art. 5(1)(e), storage limitation). Pure: no I/O, no clock; every answer takes the
moment it is asked about.

Each period but the ledger's is a setting (`RetentionSettings`, env `RETENTION_*`) with the
default docs/retention.md argues for; the ledger's six years are the Accounting Act's, not a
choice (`shared.retention`). The services' daily sweeps, `rekisteri retention`, the access
report and the register description all read the policy from here, so the four services and
the tool must run with the same settings.

A day is a date in Finnish winter time (UTC+2) all year round, as for the ledger
(`shared.retention`): in summer an event in the hour after midnight counts for the day
before, which ends its retention a day earlier, never later, and needs no time-zone database.
A retention "ends on" the last day the data is kept; a sweep on any later day deletes it.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Literal

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


class RetentionSettings(BaseSettings):
    """Every period the controller may choose, from `RETENTION_<FIELD>`; docs/retention.md
    says why each default is what it is."""

    model_config = SettingsConfigDict(env_prefix="RETENTION_", extra="ignore", frozen=True)

    buyer_months: int = Field(
        default=36,
        ge=1,
        le=1200,
        description="A buyer's data, consents and order history: months after their last "
        "order or consent event.",
    )
    recipient_months: int = Field(
        default=24, ge=1, le=1200, description="A recipient's data: months after the order."
    )
    held_disclosure_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="A held disclosure not released: days before it is cancelled and its "
        "copy of the data deleted.",
    )
    dead_letter_days: int = Field(
        default=30, ge=1, le=3650, description="A dead letter: days before it is deleted."
    )
    dead_letter_warn_days: int = Field(
        default=7,
        ge=1,
        le=3650,
        description="A dead letter: days after which `rekisteri status` warns of it.",
    )
    audit_log_years: int = Field(
        default=RETENTION_YEARS,
        ge=1,
        le=100,
        description="An audit log entry: years after the end of its year.",
    )
    erasure_record_years: int = Field(
        default=RETENTION_YEARS,
        # A receipt says which ledger lines were kept and why: it must last as long as they.
        ge=RETENTION_YEARS,
        le=100,
        description="An erasure or access request and its receipt: years after the end of "
        "the year it was received; at least the ledger's.",
    )

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


def _years(amount: int) -> Period:
    return Period(amount, Unit.YEARS_AFTER_YEAR_END)


_ERASED = Bilingual(
    fi="tiedot poistetaan kuten poistopyynnöstä, ja tilausten kirjanpitotiedot "
    "säilytetään oman säilytysaikansa loppuun",
    en="erased as on an erasure request, the ledger lines of the orders kept to their own end",
)
_DELETED = Bilingual(fi="tiedot poistetaan", en="deleted")
_ORDER_YEAR = Bilingual(fi="tilausvuoden päättyminen", en="the end of the year of the order")
_FROM_ORDER_YEAR = Bilingual(
    fi="{period} tilausvuoden päättymisestä", en="{period} after the end of the year of the order"
)
LEDGER_BASIS = Bilingual(fi="kirjanpitolaki (1336/1997) 2 luku 10 §", en=RETENTION_BASIS)


def retention_policy(settings: RetentionSettings) -> RetentionPolicy:
    """The policy with the periods of `settings`."""
    return RetentionPolicy(
        (
            Retention(
                Category.BUYER,
                setting="RETENTION_BUYER_MONTHS",
                period=Period(settings.buyer_months, Unit.MONTHS),
                what=Bilingual(
                    fi="Ostajan henkilö- ja osoitetiedot, lupatiedot ja tilaushistoria",
                    en="A buyer's personal and contact data, consents and order history",
                ),
                starts=Bilingual(
                    fi="ostajan viimeisin tilaus tai lupatietojen muutos",
                    en="the buyer's last order or consent event",
                ),
                rule=Bilingual(
                    fi="{period} ostajan viimeisimmästä tilauksesta tai lupatietojen muutoksesta",
                    en="{period} after the buyer's last order or consent event",
                ),
                at_end=_ERASED,
                basis=Bilingual(
                    fi="tietosuoja-asetuksen 5 artiklan 1 kohdan e alakohta (säilytyksen "
                    "rajoittaminen): asiakassuhteen katsotaan silloin päättyneen",
                    en="GDPR Art. 5(1)(e) (storage limitation): the customer relationship is "
                    "taken to have ended by then",
                ),
            ),
            Retention(
                Category.RECIPIENT,
                setting="RETENTION_RECIPIENT_MONTHS",
                period=Period(settings.recipient_months, Unit.MONTHS),
                what=Bilingual(
                    fi="Lahjakortin saajan henkilö- ja osoitetiedot",
                    en="A gift-card recipient's personal and contact data",
                ),
                starts=Bilingual(fi="tilaus", en="the order"),
                rule=Bilingual(fi="{period} tilauksesta", en="{period} after the order"),
                at_end=_ERASED,
                basis=Bilingual(
                    fi="tietosuoja-asetuksen 5 artiklan 1 kohdan e alakohta: lahjakortin "
                    "voimassaolo ja sitä koskevien vaatimusten käsittely",
                    en="GDPR Art. 5(1)(e): the gift card's validity and the handling of "
                    "claims about it",
                ),
            ),
            Retention(
                Category.LEDGER,
                period=_years(RETENTION_YEARS),
                what=Bilingual(
                    fi="Tilausten kirjanpitotiedot (tilaus, päivämäärä, tuotteet, "
                    "palveluntarjoaja, summat) ilman poistettujen henkilöiden tietoja",
                    en="The ledger lines of orders (order, date, products, provider, amounts), "
                    "without the data of people erased",
                ),
                starts=_ORDER_YEAR,
                rule=_FROM_ORDER_YEAR,
                at_end=_DELETED,
                basis=LEDGER_BASIS,
            ),
            Retention(
                Category.DISCLOSURE_LOG,
                period=_years(RETENTION_YEARS),
                what=Bilingual(
                    fi="Luovutusloki (mikä palveluntarjoaja sai minkä tilauksen mitkä tiedot "
                    "ja milloin)",
                    en="The disclosure log (which provider received which data of which "
                    "order, and when)",
                ),
                starts=_ORDER_YEAR,
                rule=_FROM_ORDER_YEAR,
                at_end=_DELETED,
                basis=Bilingual(
                    fi="tietosuoja-asetuksen 5 artiklan 2 kohta ja 19 artikla (luovutusten "
                    "osoittaminen), yhtä kauan kuin tilauksen kirjanpitotiedot",
                    en="GDPR Art. 5(2) and 19 (proof of disclosures), as long as the order's "
                    "ledger lines",
                ),
            ),
            Retention(
                Category.HELD_DISCLOSURE,
                setting="RETENTION_HELD_DISCLOSURE_DAYS",
                period=Period(settings.held_disclosure_days, Unit.DAYS),
                what=Bilingual(
                    fi="Pidätetyt luovutukset, joita ei ole lähetetty, ja niiden kopio tiedoista",
                    en="Held disclosures not sent, and their copy of the data",
                ),
                starts=Bilingual(fi="luovutuksen pidättäminen", en="when it was held"),
                rule=Bilingual(fi="{period} pidättämisestä", en="{period} after it was held"),
                at_end=Bilingual(
                    fi="luovutus perutaan ja kopio poistetaan; luovutuslokiin jää "
                    "merkintä perutusta luovutuksesta",
                    en="cancelled and the copy deleted; the disclosure log keeps it as cancelled",
                ),
                basis=Bilingual(
                    fi="tietosuoja-asetuksen 5 artiklan 1 kohdan c ja e alakohta: "
                    "luovuttamatonta kopiota ei säilytetä odottamassa",
                    en="GDPR Art. 5(1)(c) and (e): a copy of data not disclosed is not kept "
                    "waiting",
                ),
            ),
            Retention(
                Category.DEAD_LETTER,
                setting="RETENTION_DEAD_LETTER_DAYS",
                period=Period(settings.dead_letter_days, Unit.DAYS),
                what=Bilingual(
                    fi="Viestit, joita rekisteri ei voinut käsitellä, kokonaisina",
                    en="Messages the register could not process, whole",
                ),
                starts=Bilingual(
                    fi="viestin jääminen käsittelemättä", en="when the message was set aside"
                ),
                rule=Bilingual(
                    fi="{period} siitä, kun viesti jäi käsittelemättä",
                    en="{period} after the message was set aside",
                ),
                at_end=Bilingual(
                    fi="viestit poistetaan; ylläpito saa varoituksen viestistä, joka on "
                    "odottanut {warn}",
                    en="deleted; operators are warned of a message that has waited {warn}",
                ),
                basis=Bilingual(
                    fi="tietosuoja-asetuksen 5 artiklan 1 kohdan e alakohta ja 32 artikla: "
                    "viestit sisältävät henkilötietoja",
                    en="GDPR Art. 5(1)(e) and 32: the messages hold personal data",
                ),
                warn_after=Period(settings.dead_letter_warn_days, Unit.DAYS),
            ),
            Retention(
                Category.AUDIT_LOG,
                setting="RETENTION_AUDIT_LOG_YEARS",
                period=_years(settings.audit_log_years),
                what=Bilingual(
                    fi="Ylläpidon toimenpiteiden tarkastusloki (kuka käsitteli kenen tietoja "
                    "ja milloin; henkilöt avainnettuina tiivisteinä)",
                    en="The audit log of staff's commands (who handled whose data and when; "
                    "people as keyed hashes)",
                ),
                starts=Bilingual(
                    fi="merkintävuoden päättyminen", en="the end of the year of the entry"
                ),
                rule=Bilingual(
                    fi="{period} merkintävuoden päättymisestä",
                    en="{period} after the end of the year of the entry",
                ),
                at_end=_DELETED,
                basis=Bilingual(
                    fi="tietosuoja-asetuksen 5 artiklan 2 kohta ja 24 artikla "
                    "(osoitusvelvollisuus) sekä vaatimusten vanhentuminen (laki velan "
                    "vanhentumisesta 728/2003)",
                    en="GDPR Art. 5(2) and 24 (accountability), and the limitation of claims "
                    "(Finnish Limitation Act 728/2003)",
                ),
            ),
            Retention(
                Category.ERASURE_RECORD,
                setting="RETENTION_ERASURE_RECORD_YEARS",
                period=_years(settings.erasure_record_years),
                what=Bilingual(
                    fi="Poisto- ja tarkastuspyynnöt kuittauksineen (henkilöt avainnettuina "
                    "tiivisteinä)",
                    en="Erasure and access requests and their receipts (people as keyed hashes)",
                ),
                starts=Bilingual(
                    fi="pyynnön vastaanottovuoden päättyminen",
                    en="the end of the year the request was received",
                ),
                rule=Bilingual(
                    fi="{period} pyynnön vastaanottovuoden päättymisestä",
                    en="{period} after the end of the year the request was received",
                ),
                at_end=_DELETED,
                basis=Bilingual(
                    fi="tietosuoja-asetuksen 5 artiklan 2 kohta sekä 12 ja 17 artikla "
                    "(pyyntöihin vastaamisen osoittaminen); vähintään yhtä kauan kuin "
                    "kuittauksessa mainitut kirjanpitotiedot",
                    en="GDPR Art. 5(2), 12 and 17 (proof that requests were answered); at "
                    "least as long as the ledger lines a receipt accounts for",
                ),
            ),
        )
    )
