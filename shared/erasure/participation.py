"""What every data-holding service does the same way when a person is erased.

The erasure service tells each participant (`EraseSubject`) and waits for its report
(`ErasureReported`). A participant takes part through `Participation`, which keeps the order
that makes the erasure safe to repeat and impossible to undo:

1. bury: a tombstone (keyed hash, when, by which requests) goes in first, so from then on an
   event about the person that happened before the erasure changes nothing, even one already
   on its way; an event that happened after it starts a clean record;
2. take the person's messages out of the service's dead-letter queues;
3. plan: count what will be erased and say what must be kept, and store that report under the
   request id; a repeat of the request finds it and is answered with the same report;
4. carry out the plan (every step idempotent), mark the report done, publish it.

A crash anywhere repeats the request (the erasure service sends it again until it hears back),
which resumes at the first step not done.

All four steps run holding the person's lock (`people`), which the service's event handlers hold
from their tombstone check to their last write: nothing already being handled can undo the
erasure (shared/erasure/people.py says why that suffices).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any, Protocol

from faststream.rabbit import RabbitBroker

from shared import topology
from shared.contracts.erasure import EraseSubject, ErasureReported
from shared.dead_letters import QueueInspector, mentions_subject
from shared.erasure.people import PersonLocks
from shared.erasure.records import ErasureRecords
from shared.erasure.tombstone import DEAD_LETTERS, Plan
from shared.identity import SubjectHasher
from shared.messaging import Publication

log = logging.getLogger(__name__)


class Participant(Protocol):
    """A service's own part of an erasure."""

    async def plan_erasure(self, command: EraseSubject) -> Plan: ...

    async def carry_out_erasure(self, command: EraseSubject, report: ErasureReported) -> None: ...


class DeadLetterRemover(Protocol):
    async def remove_subject(self, subject: str) -> int: ...


class SubjectDeadLetters:
    """Takes a person's messages out of every dead-letter queue the service answers for (its
    inspector's: those of the queues it consumes, and the disclosure service's providers'),
    found by keyed hash, holding the inspector's turn so no listing or replay interleaves.

    The email never travels with an erasure, so each message's email addresses (a buyer's, a
    recipient's) are normalised and hashed as the services hash them and compared with the
    subject, as is the place on an order of a person without an email; internal messages that
    carry the hash itself match too (shared/dead_letters.py `mentions_subject`).
    """

    def __init__(self, inspector: QueueInspector, hasher: SubjectHasher) -> None:
        self._inspector = inspector
        self._hasher = hasher

    async def remove_subject(self, subject: str) -> int:
        return await self._inspector.remove(
            lambda body: mentions_subject(body, subject, self._hasher)
        )


class ErasureReporter:
    """Publishes a participant's `erasure.reported` to the erasure service."""

    def __init__(self, broker: RabbitBroker) -> None:
        self._reported = Publication(
            broker,
            exchange=topology.register_events_exchange(),
            routing_key=topology.ERASURE_REPORTED,
            schema=ErasureReported,
            title=topology.ERASURE_REPORTED,
            description=(
                "What a service erased of a person and what it kept, why and until when, with "
                "AMQP `message_id` `<request_id>:<service>`, before the request is acknowledged."
            ),
        )

    async def report(self, report: ErasureReported) -> None:
        await self._reported.publish(
            report,
            message_id=f"{report.request_id}:{report.service}",
            message_type=topology.ERASURE_REPORTED,
        )


class Participation:
    """Runs one participant's part of an erasure in the order this module's docstring gives."""

    def __init__(
        self,
        service: str,
        records: ErasureRecords,
        dead_letters: DeadLetterRemover,
        reporter: ErasureReporter,
    ) -> None:
        self._service = service
        self._records = records
        self._dead_letters = dead_letters
        self._reporter = reporter
        # One erasure at a time: a request repeated while the first delivery is still at work
        # then finds it done, instead of sending the providers' notices a second time.
        self._one_at_a_time = asyncio.Lock()
        self.people = PersonLocks()
        """Held by the service's event handlers around their tombstone check and writes
        (shared/erasure/people.py)."""

    @classmethod
    def of(
        cls,
        service: str,
        records: ErasureRecords,
        inspector: QueueInspector,
        hasher: SubjectHasher,
        broker: RabbitBroker,
    ) -> Participation:
        """A service's participation, wired as every service wires it."""
        dead_letters = SubjectDeadLetters(inspector, hasher)
        return cls(service, records, dead_letters, ErasureReporter(broker))

    async def erase(self, command: EraseSubject, participant: Participant) -> ErasureReported:
        async with self._one_at_a_time, self.people.holding([command.subject]):
            return await self._erase(command, participant)

    async def _erase(self, command: EraseSubject, participant: Participant) -> ErasureReported:
        ids: dict[str, Any] = {"subject": command.subject, "request_id": command.request_id}
        stored = await self._records.report(command.request_id)
        if stored is None:
            await self._records.bury(command)
            removed = await self._dead_letters.remove_subject(command.subject)
            plan = await participant.plan_erasure(command)
            await self._records.save_report(
                ErasureReported(
                    request_id=command.request_id,
                    service=self._service,  # type: ignore[arg-type]
                    reported_at=datetime.now(UTC),
                    erased={**plan.erased, DEAD_LETTERS: removed},
                    kept=plan.kept,
                    providers_notified=plan.providers_notified,
                )
            )
            stored = await self._records.report(command.request_id)
            assert stored is not None
        report, done = stored
        if not done:
            await participant.carry_out_erasure(command, report)
            await self._records.mark_done(command.request_id)
            log.info("person erased", extra=ids)
        await self._reporter.report(report)
        return report
