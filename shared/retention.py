"""How long what the law obliges the register to keep of an erased person is kept, and when it
goes (GDPR Art. 5(1)(e): no longer than needed).

Vouchers are kept six years from the end of the year in which the financial year ended
(Finnish Accounting Act 1336/1997, chapter 2, section 10). The register takes the financial
year to be the calendar year, decided in Finnish time. The orders service keeps an erased
person's orders as ledger lines until then (and those of a person whose own data expired);
the disclosure service keeps its log of what providers received of each order as long (the
proof of Art. 5(2) and 19). The daily retention sweep in each (shared/retention_sweep.py)
deletes what has reached its end.

The periods of every other category of data, and this one's place among them:
`shared.retention_policy`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

RETENTION_BASIS = "Finnish Accounting Act 1336/1997 ch. 2 §10"
RETENTION_YEARS = 6
# Which year an order belongs to is decided in Finnish time. A year always ends in winter, in
# Eastern European Time, so that fixed offset is exact at every year's boundary (and needs no
# time-zone database).
FINNISH_WINTER_TIME = timezone(timedelta(hours=2), "EET")
SWEEP_INTERVAL_SECONDS = 24 * 60 * 60


def ledger_kept_until(placed_at: datetime) -> date:
    """The last day the ledger lines of an order placed at `placed_at` must be kept."""
    financial_year = placed_at.astimezone(FINNISH_WINTER_TIME).year
    return date(financial_year + RETENTION_YEARS, 12, 31)


def expired_before(now: datetime) -> str:
    """What a sweep at `now` deletes: anything kept until a day before this one, as the ISO
    date it is stored as (which sorts as the date does). Every retention ends on 31 December,
    in winter, where the fixed offset is exact."""
    return now.astimezone(FINNISH_WINTER_TIME).date().isoformat()
