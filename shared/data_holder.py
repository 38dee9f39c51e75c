"""What the services that hold people's data (orders, consent, disclosure) are built with and do
alike: they name people by keyed hash, take part in their erasure, and keep each kind of data
for as long as the retention policy says."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.contracts.erasure import EraseSubject, ErasureReported
from shared.erasure.participation import Participation
from shared.erasure.records import ErasureRecords
from shared.erasure.tombstone import Plan
from shared.identity import SubjectHasher
from shared.retention_policy import RetentionPolicy
from shared.service_definition import Parts


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Holding:
    """What a data-holding service's use cases take besides its store and its own parts."""

    hasher: SubjectHasher
    participation: Participation
    policy: RetentionPolicy
    clock: Callable[[], datetime] = utc_now

    @classmethod
    def of(cls, parts: Parts, records: ErasureRecords) -> Holding:
        """From what every service is built from, with the service's records of erasures."""
        return cls(parts.hasher, parts.participation(records), parts.policy)


class DataHolder(ABC):
    """A data-holding service's use cases; its part of an erasure is its own two steps."""

    def __init__(self, holding: Holding) -> None:
        self._hasher = holding.hasher
        self._participation = holding.participation
        self._clock = holding.clock

    async def erase(self, command: EraseSubject) -> None:
        """The erasure service's request: done in the order shared/erasure/participation.py
        gives, holding the person's lock, and reported."""
        await self._participation.erase(command, self)

    @abstractmethod
    async def plan_erasure(self, command: EraseSubject) -> Plan:
        """Count what will be erased and say what must be kept, changing nothing."""

    @abstractmethod
    async def carry_out_erasure(self, command: EraseSubject, report: ErasureReported) -> None:
        """Carry out the plan; every step idempotent, as a crash repeats it."""
