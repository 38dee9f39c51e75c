"""Prometheus metrics every service exposes at `/metrics`.

Labels are queue names, outcomes, service names and categories of data (those of
shared/retention_policy.py) only: never anything taken from a message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

Outcome = Literal["handled", "dead_lettered", "retried"]

MESSAGES = Counter(
    "register_messages_total",
    "Messages consumed, by queue and what became of them.",
    ["queue", "outcome"],
)
HANDLER_SECONDS = Histogram(
    "register_handler_seconds",
    "Time from taking a message to settling it (ack, dead-letter or requeue).",
    ["queue"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
COMMANDS = Counter(
    "register_commands_total",
    "Operators' commands served, by queue and whether they succeeded.",
    ["queue", "ok"],
)
IGNORED_AFTER_ERASURE = Counter(
    "register_events_ignored_after_erasure_total",
    "Events left alone because they happened before their person was erased.",
    ["service"],
)
RETENTION_DELETED = Counter(
    "register_retention_deleted_total",
    "Records the daily retention sweep deleted (held disclosures: cancelled), by category of data.",
    ["service", "category"],
)
RETENTION_SWEEP_FAILED = Counter(
    "register_retention_sweep_failed_total",
    "Parts of the daily retention sweep that failed (tried again the next day), by category.",
    ["service", "category"],
)
IGNORED_AFTER_RETENTION = Counter(
    "register_events_ignored_after_retention_total",
    "Events whose data had passed its retention period when they arrived: left out.",
    ["service"],
)


@contextmanager
def timed(queue: str) -> Iterator[Callable[[Outcome], None]]:
    """Time one delivery; the caller reports its outcome through the yielded function."""
    started = time.perf_counter()
    outcomes: list[Outcome] = []
    try:
        yield outcomes.append
    finally:
        HANDLER_SECONDS.labels(queue).observe(time.perf_counter() - started)
        for outcome in outcomes:
            MESSAGES.labels(queue, outcome).inc()


def exposition() -> tuple[bytes, str]:
    """The current metrics in Prometheus' text format, and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST
