"""When a dead letter was set aside: what the retention sweep deletes dead letters by, and
what `rekisteri status` warns of (shared/retention_policy.py, category `dead-letter`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from aio_pika.abc import AbstractIncomingMessage

from shared.messaging import REJECTED_AT_HEADER


def _moment(value: Any) -> datetime | None:
    """A header's or field's time as an aware datetime (UTC when it names no zone)."""
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def set_aside_at(message: AbstractIncomingMessage) -> datetime | None:
    """When the message became a dead letter: the register's own stamp, else the broker's
    (`x-death`), else the time its sender put on it. A message the web shop's exchange could
    not route carries no stamp: its event's `occurred_at` stands in, as it was unroutable when
    it was published. None when no time can be told: such a message is never deleted by age."""
    headers = message.headers or {}
    deaths = headers.get("x-death") or []
    death = deaths[0] if deaths and isinstance(deaths[0], dict) else {}
    for stamp in (headers.get(REJECTED_AT_HEADER), death.get("time"), message.timestamp):
        if (moment := _moment(stamp)) is not None:
            return moment
    try:
        data = orjson.loads(message.body)
    except orjson.JSONDecodeError:
        return None
    return _moment(data.get("occurred_at")) if isinstance(data, dict) else None
