"""Structured JSON log lines on stderr, one object per line.

Log ids and keyed hashes, never personal data: callers pass extra fields through `extra=`
and only those named in `SAFE_FIELDS` are written, so a stray `extra={"email": ...}` is dropped
rather than leaked.
"""

from __future__ import annotations

import logging
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import orjson

SAFE_FIELDS = frozenset(
    {
        "service",
        "event_id",
        "order_id",
        "provider_id",
        "disclosure_id",
        "request_id",
        "subject",
        "queue",
        "routing_key",
        "message_id",
        "reason",
        "command",
        "actor",
        "count",
        "store",
        "port",
        "status",
        "announced",
    }
)


def _innermost_frame(tb: TracebackType | None) -> str:
    frames = traceback.extract_tb(tb)
    if not frames:
        return ""
    frame = frames[-1]
    return f"{Path(frame.filename).name}:{frame.lineno} in {frame.name}"


def error_location(error: BaseException) -> str:
    """Where an error was raised (`store.py:42 in add_order`): safe to log, unlike its text."""
    return _innermost_frame(error.__traceback__)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k in SAFE_FIELDS})
        if record.exc_info and record.exc_info[0] is not None:
            # Type and place only: exception texts can quote the data that caused them.
            entry["error"] = record.exc_info[0].__name__
            entry["error_at"] = _innermost_frame(record.exc_info[2])
        return orjson.dumps(entry, default=str).decode()


def configure_logging(service: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aio-pika and aiormq log connection chatter at INFO; keep warnings.
    for noisy in ("aio_pika", "aiormq", "pymongo"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
