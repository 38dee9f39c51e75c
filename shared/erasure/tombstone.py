"""An erased person's tombstone and a participant's plan: the rules, without I/O."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from shared.contracts.erasure import Retained
from shared.contracts.fields import CLOCK_SKEW
from shared.metrics import IGNORED_AFTER_ERASURE

log = logging.getLogger(__name__)

DEAD_LETTERS = "dead letters"
"""The `erased` count every report carries: the person's messages taken out of dead-letter queues."""


@dataclass(frozen=True)
class Tombstone:
    subject: str
    erased_at: datetime
    request_ids: tuple[str, ...]

    def buries(self, occurred_at: datetime) -> bool:
        """Whether an event that happened at `occurred_at` may predate the erasure, so it must
        not bring the person back.

        `occurred_at` is the web shop's clock and `erased_at` the erasure service's; the web
        shop's may run up to `CLOCK_SKEW` ahead (a later stamp is refused as absurd). An order
        placed just before the erasure could carry a stamp up to that much after it, so events
        stamped within the skew after the erasure are buried too: erring on the side of the
        erasure, a person's first order within minutes of being erased arrives without them.
        """
        return occurred_at <= self.erased_at + CLOCK_SKEW


def ignore_buried(service: str, what: str, ids: dict[str, str]) -> None:
    """Log and count an event left alone because it predates the person's erasure."""
    IGNORED_AFTER_ERASURE.labels(service).inc()
    log.info("%s predates an erasure: ignored", what, extra=ids)


@dataclass(frozen=True)
class Plan:
    """What a participant will erase (counts by kind) and what it must keep, and why."""

    erased: dict[str, int]
    kept: list[Retained]
    providers_notified: list[str]
