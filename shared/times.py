"""Moments as both stores keep them: UTC, to the millisecond."""

from __future__ import annotations

from datetime import UTC, datetime


def to_millis(moment: datetime) -> datetime:
    """The moment truncated to whole milliseconds, the precision both stores keep: a moment
    compared with a stored one must be compared as it will be stored."""
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)


def aware(moment: datetime) -> datetime:
    """A stored datetime as UTC-aware (MongoDB keeps UTC, and some drivers return it naive)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
