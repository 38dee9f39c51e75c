"""Every command staff send a service, kept: who, when, what, on whom, and how it went.

Each service keeps its own audit log in the `audit` collection of its own database. The command
path in shared/messaging.py writes one entry for every command, whatever its outcome, before
the reply goes out; a reply whose entry could not be written is withheld. Entries are only ever
inserted. A command names a person by `email`: the entry keeps the keyed subject hash
(shared.identity), never the email; of the rest it keeps only ids (`TARGET_FIELDS`), never
names, addresses or free text. `rekisteri audit list` reads every service's log.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson
from faststream.rabbit import RabbitBroker
from pydantic import BaseModel
from pymongo import ASCENDING, DESCENDING, IndexModel

from shared.contracts.runtime import AuditEntry, AuditOutcome
from shared.database import Database
from shared.identity import SubjectHasher
from shared.settings import ServiceSettings

AUDIT_LOG = "audit_log"
"""Where the broker's context holds the service's `AuditLog` (see `open_audit_log`)."""
COLLECTION = "audit"
TARGET_FIELDS = (
    "provider_id",
    "order_id",
    "request_id",
    "disclosure_id",
    "queue",
    "ids",
    "purpose",
    "status",
)
_COMMAND_NAME = re.compile(r"^[a-z][a-z.]{0,63}$")


class AuditLog:
    def __init__(self, database: Database, service: str, hasher: SubjectHasher) -> None:
        self._entries = database[COLLECTION]
        self._service = service
        self._hasher = hasher

    async def create_indexes(self) -> None:
        await self._entries.create_indexes(
            [
                IndexModel([("at", DESCENDING)]),
                IndexModel([("actor", ASCENDING), ("at", DESCENDING)]),
            ]
        )

    async def record(
        self,
        *,
        actor: str | None,
        command: BaseModel | None,
        body: bytes,
        outcome: AuditOutcome,
        count: int | None = None,
        message_id: str | None = None,
    ) -> None:
        """Append one entry; `command` is None when the body could not be read as a command."""
        fields = command.model_dump(mode="json") if command is not None else {}
        email = fields.get("email")
        entry = AuditEntry(
            at=datetime.now(UTC),
            service=self._service,
            actor=actor,
            command=fields.get("command") or _claimed_command(body),
            outcome=outcome,
            subject=self._hasher(email) if email else None,
            targets={key: fields[key] for key in TARGET_FIELDS if fields.get(key) is not None},
            count=count,
            message_id=message_id,
        )
        await self._entries.insert_one(entry.model_dump())

    async def entries(
        self, since: datetime | None, actor: str | None, limit: int
    ) -> list[AuditEntry]:
        """Newest first."""
        query: dict[str, Any] = {}
        if actor is not None:
            query["actor"] = actor
        if since is not None:
            query["at"] = {"$gte": since}
        cursor = self._entries.find(query, {"_id": 0}).sort("at", DESCENDING).limit(limit)
        return [AuditEntry.model_validate(document, strict=False) async for document in cursor]


def _claimed_command(body: bytes) -> str:
    """The name an unreadable command gives itself, if it is one; never any other content."""
    try:
        claimed = orjson.loads(body).get("command")
    except (orjson.JSONDecodeError, AttributeError):
        return "unreadable"
    return claimed if isinstance(claimed, str) and _COMMAND_NAME.match(claimed) else "unreadable"


async def open_audit_log(
    settings: ServiceSettings, database: Database, broker: RabbitBroker
) -> AuditLog:
    """The service's audit log, indexed, where the broker's command handlers find it."""
    audit = AuditLog(
        database,
        settings.service_name,
        SubjectHasher(settings.identity_hash_key.get_secret_value()),
    )
    await audit.create_indexes()
    broker.context.set_global(AUDIT_LOG, audit)
    return audit
