"""A person named by an order they are on (issue 18): a gift-card recipient without an email is
reached all the same. The four services on one FastStream test broker, each with its own
embedded store in memory; the erasure service asks the orders service who is on an order.
(The same against the real broker and processes: tests/e2e/test_erasure_by_order.py.)"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from faststream.rabbit import RabbitBroker, TestRabbitBroker
from pydantic import BaseModel

from services.consent.app import assemble as assemble_consent
from services.consent.settings import ConsentSettings
from services.disclosure.app import assemble as assemble_disclosure
from services.disclosure.domain import plan_disclosures
from services.disclosure.settings import DisclosureSettings
from services.disclosure.store import Named
from services.disclosure.store import open_store as open_disclosure_store
from services.disclosure.store.sqlite_schema import SCHEMA, SUBJECTS_TABLE
from services.erasure.app import assemble as assemble_erasure
from services.erasure.settings import ErasureSettings
from services.orders.app import assemble as assemble_orders
from services.orders.settings import OrdersSettings
from services.orders.store import open_store as open_orders_store
from shared import messaging, topology
from shared.audit import open_audit_log
from shared.contracts.erasure import (
    ListErasureRequests,
    ReportSubject,
    RequestErasure,
    ShowErasureRequest,
)
from shared.contracts.ops import OpsReply
from shared.contracts.orders import LookupPerson, PersonOnOrder
from shared.contracts.providers import AddProvider
from shared.contracts.webshop import OrderPlaced
from shared.database import Database, connect_database
from shared.erasure.participation import SubjectDeadLetters
from shared.identity import SubjectHasher
from shared.settings import ServiceSettings
from tests.factories import full_person, order_placed, person
from tests.unit.test_erasure_services import listen, publish_webshop
from tests.unit.test_services import HASH, in_memory, place, running

AINO = "aino.virtanen@example.fi"
EINO = person(
    "Eino",
    "Korhonen",
    None,
    phone="+358 50 765 4321",
    birth_date="1990-07-14",
    address={"street": "Puistokatu 7", "postal_code": "00140", "city": "Helsinki", "country": "FI"},
)
"""A gift-card recipient with a phone, an address and a birth date, and no email."""
EINO_VALUES = ("Korhonen", "+358 50 765 4321", "Puistokatu 7", "1990-07-14")
# Long enough for any rule production may put on the identity key.
PRODUCTION_KEY = "unit-test-identity-key-long-enough-for-production"

SERVICES: tuple[tuple[type[ServiceSettings], Any], ...] = (
    (OrdersSettings, assemble_orders),
    (ConsentSettings, assemble_consent),
    (DisclosureSettings, assemble_disclosure),
    (ErasureSettings, assemble_erasure),
)


@dataclass(frozen=True)
class DeadLetter:
    queue: str
    reason: str


@dataclass
class Register:
    broker: RabbitBroker
    databases: dict[str, Database]
    provider: list[dict[str, Any]]
    dead_letters: list[DeadLetter]

    async def ask(self, service: str, command: BaseModel) -> OpsReply:
        reply = await self.broker.request(
            command.model_dump_json().encode(),
            exchange=topology.ops_exchange(),
            routing_key=service,
            user_id="staff-anna",
        )
        return OpsReply.model_validate_json(reply.body)

    async def result(self, service: str, command: BaseModel) -> Any:
        answer = await self.ask(service, command)
        assert answer.ok, answer.error
        return answer.result

    async def erase(self, **named: Any) -> dict[str, Any]:
        """An erasure requested by staff, as it stands once the services have done their part
        (the test broker runs them as the request is made)."""
        command = RequestErasure(reason="subject-request", **named)
        started = await self.result("erasure", command)
        return await self.result("erasure", ShowErasureRequest(request_id=started["request_id"]))

    async def webshop_erasure(self, **named: Any) -> dict[str, Any]:
        event = {
            "event_id": str(uuid.uuid4()),
            "occurred_at": (datetime.now(UTC) - timedelta(seconds=1)).isoformat(),
            "request_id": f"WS-{uuid.uuid4().hex[:12]}",
            "reason": "subject-request",
            **named,
        }
        await publish_webshop(self.broker, event)
        return event


@pytest.fixture
def dead_letters(monkeypatch: pytest.MonkeyPatch) -> list[DeadLetter]:
    """What the services dead-letter: the test broker has no channel to send it on."""
    taken: list[DeadLetter] = []

    async def take(message: Any, queue: str, service: str, reason: str, *_: Any) -> None:
        taken.append(DeadLetter(queue, reason))

    monkeypatch.setattr(messaging, "dead_letter", take)

    async def none_found(self: SubjectDeadLetters, subject: str) -> int:
        return 0  # without a broker there are no dead-letter queues to clear

    monkeypatch.setattr(SubjectDeadLetters, "remove_subject", none_found)
    return taken


@pytest.fixture
async def register(dead_letters: list[DeadLetter]) -> AsyncIterator[Register]:
    """Every service on one test broker, each with its own database; provider spa-oy listens."""
    broker = RabbitBroker()
    provider = listen(
        broker,
        topology.Subscription(
            topology.provider_queue_name("spa-oy"), topology.disclosures_exchange(), "spa-oy"
        ),
    )
    # The consent service publishes its changes; nothing in the register consumes them yet.
    listen(
        broker,
        topology.Subscription(
            "test.consent-changed", topology.register_events_exchange(), topology.CONSENT_CHANGED
        ),
    )
    databases: dict[str, Database] = {}
    async with AsyncExitStack() as stack:
        for settings_class, assemble in SERVICES:
            settings = in_memory(settings_class)
            database = await connect_database(settings)
            stack.push_async_callback(database.close)
            databases[settings.service_name] = database
            # Each command handler takes the audit log from the broker: the last one serves all.
            await open_audit_log(settings, database, broker)
            await assemble(settings, database, broker)
        test_broker = await stack.enter_async_context(TestRabbitBroker(broker))
        register = Register(test_broker, databases, provider, dead_letters)
        await register.result(
            "disclosure", AddProvider(provider_id="spa-oy", name="Kylpylä Oy", country="FI")
        )
        yield register


async def a_gift_for_eino(register: Register) -> dict[str, Any]:
    """Aino buys spa-oy's gift card for Eino, whose email the web shop does not know; spa-oy
    gets the order's data."""
    order = order_placed(
        buyer=full_person("Aino", "Virtanen", AINO),
        recipient=EINO,
        occurred_at=datetime.now(UTC) - timedelta(minutes=10),
    )
    await place(register.broker, order)
    assert [m["type"] for m in register.provider] == ["disclosure"]
    return order


# --- who is on an order ------------------------------------------------------------------------


async def test_staff_ask_the_orders_service_who_is_on_an_order(register: Register) -> None:
    order = await a_gift_for_eino(register)
    order_id = order["order_id"]
    buyer = await register.result("orders", LookupPerson(order_id=order_id, role="buyer"))
    recipient = await register.result("orders", LookupPerson(order_id=order_id, role="recipient"))
    assert buyer["subject"] == HASH(AINO)
    assert recipient["subject"] == HASH.of_order_person(order_id, "recipient")

    unknown = await register.ask("orders", LookupPerson(order_id="KK-nope", role="buyer"))
    assert not unknown.ok and unknown.error == "order KK-nope is not known"


async def test_a_report_by_order_shows_the_recipients_data_in_the_order(
    register: Register,
) -> None:
    order = await a_gift_for_eino(register)
    subject = HASH.of_order_person(order["order_id"], "recipient")
    orders = await register.result("orders", ReportSubject(subject=subject))
    [theirs] = orders["orders"]
    assert theirs["order_id"] == order["order_id"] and theirs["as_recipient"] == EINO
    assert "as_buyer" not in theirs and orders["profiles"] == {}
    disclosure = await register.result("disclosure", ReportSubject(subject=subject))
    assert [sent["provider_id"] for sent in disclosure["sent"]] == ["spa-oy"]


# --- erasing a person named by an order ---------------------------------------------------------


async def test_a_recipient_without_email_is_erased_by_order_everywhere_and_spa_oy_told(
    register: Register,
) -> None:
    order = await a_gift_for_eino(register)
    order_id = order["order_id"]
    eino = HASH.of_order_person(order_id, "recipient")

    done = await register.erase(order_id=order_id, role="recipient")
    assert done["status"] == "completed", done
    assert done["receipt"]["providers_notified"] == ["spa-oy"]

    # The order keeps Aino's data and its ledger; none of Eino's.
    orders = await open_orders_store(register.databases["orders"])
    stored = await orders.order(order_id)
    assert stored is not None and stored.recipient is None and stored.recipient_subject is None
    assert stored.buyer is not None and stored.buyer_subject == HASH(AINO)
    assert stored.kept_until is None, "it still holds Aino's data"
    assert not any(value in stored.model_dump_json() for value in EINO_VALUES)

    # spa-oy is told to erase the recipient's data of that order, and only that.
    notice = register.provider[-1]
    assert notice["type"] == "erasure_notice" and notice["order_ids"] == [order_id]
    assert notice["roles"] == [{"order_id": order_id, "role": "recipient"}]

    # The disclosure log still shows what spa-oy got, naming Aino and, for Eino, the erasure.
    disclosures = await open_disclosure_store(register.databases["disclosure"])
    [entry] = await disclosures.log_of(order_id)
    assert entry.people == tuple(
        sorted(
            [Named(HASH(AINO), "buyer"), Named(f"erased:{done['request_id']}", "recipient")],
            key=lambda named: named.subject,
        )
    )

    # Named by the order again, he is found by his erasure: a report shows nothing of him.
    again = await register.result("orders", LookupPerson(order_id=order_id, role="recipient"))
    assert again["subject"] == eino
    report = await register.result("orders", ReportSubject(subject=eino))
    assert report["orders"] == [] and report["erased_at"] is not None
    assert [kept["order_id"] for kept in report["retained"]] == [order_id]
    assert not any(value in json.dumps(report) for value in EINO_VALUES)

    # Once Aino is erased too (named by the order), it names nobody: kept for its ledger only.
    assert (await register.erase(order_id=order_id, role="buyer"))["status"] == "completed"
    stored = await orders.order(order_id)
    assert stored is not None and stored.buyer is None and stored.recipient is None
    assert stored.kept_until is not None


async def test_a_buyer_named_by_an_order_is_the_buyer_named_by_email(register: Register) -> None:
    order = await a_gift_for_eino(register)
    done = await register.erase(order_id=order["order_id"], role="buyer")
    assert done["status"] == "completed"

    orders = await open_orders_store(register.databases["orders"])
    tombstone = await orders.erasures.tombstone(HASH(AINO))
    assert tombstone is not None and tombstone.request_ids == (done["request_id"],)
    assert await orders.erasures.tombstone(HASH.of_order_person(order["order_id"], "buyer")) is None
    # Her erasure and access requests are found by her email.
    answer = await register.result("erasure", ReportSubject(email=AINO))
    assert [r["request_id"] for r in answer["requests"] if r["type"] == "erasure"] == [
        done["request_id"]
    ]
    assert register.provider[-1]["roles"] == [{"order_id": order["order_id"], "role": "buyer"}]


async def test_the_web_shops_request_by_order_erases_the_recipient_once(
    register: Register,
) -> None:
    order = await a_gift_for_eino(register)
    named = {"order_id": order["order_id"], "role": "recipient"}
    event = await register.webshop_erasure(**named)
    # Delivered again after he is erased: the same request, not a lookup that finds nobody.
    await publish_webshop(register.broker, event)
    assert register.dead_letters == []
    done = await register.result("erasure", ShowErasureRequest(request_id=event["request_id"]))
    assert done["status"] == "completed" and done["source"] == "webshop"
    notices = [m for m in register.provider if m["type"] == "erasure_notice"]
    assert [n["roles"] for n in notices] == [[named]]


async def test_an_unknown_order_is_refused_to_staff_and_dead_lettered_for_the_web_shop(
    register: Register,
) -> None:
    refused = await register.ask(
        "erasure", RequestErasure(order_id="KK-nope", role="recipient", reason="misuse")
    )
    assert not refused.ok and refused.error == "order KK-nope is not known"

    await register.webshop_erasure(order_id="KK-nope", role="recipient")
    # Aino, erased by her email, is then named by her order: nobody is the buyer any more.
    # (Eino, erased by his place on the order, would be found by it again: see above.)
    order = await a_gift_for_eino(register)
    await register.erase(email=AINO)
    await register.webshop_erasure(order_id=order["order_id"], role="buyer")

    unknown, erased = register.dead_letters
    assert unknown.queue == erased.queue == "erasure.erasure-requested"
    assert unknown.reason == "order_id: no order with this id is known to the register"
    assert erased.reason.startswith("role: the order names nobody in this role any more")
    for dead_letter in register.dead_letters:
        assert "KK-" not in dead_letter.reason and "Korhonen" not in dead_letter.reason
    listed = await register.result("erasure", ListErasureRequests())
    assert [r["source"] for r in listed if r["type"] == "erasure"] == ["ops"], "no other started"
    refused = await register.ask(
        "erasure", RequestErasure(order_id=order["order_id"], role="buyer", reason="misuse")
    )
    assert (
        refused.error == f"order {order['order_id']} names no buyer any more: their data was erased"
    )


async def test_only_the_erasure_service_may_ask_who_is_on_an_order(
    dead_letters: list[DeadLetter],
) -> None:
    """In production (in development guest counts as every party): the orders service logged
    in as itself answers the erasure service, and no one else."""
    settings = OrdersSettings(
        REGISTER_ENV="production",
        rabbitmq_url="amqp://orders:fake-password@localhost:5672/register",
        mongodb_url="memory://",
        identity_hash_key=PRODUCTION_KEY,
    )
    async with running(settings, assemble_orders) as (broker, _):
        order = order_placed(recipient=EINO)
        await place(broker, order)
        question = LookupPerson(order_id=order["order_id"], role="recipient")

        async def ask_as(user_id: str) -> PersonOnOrder:
            reply = await broker.request(
                question.model_dump_json().encode(),
                exchange=topology.register_events_exchange(),
                routing_key=topology.PERSON_LOOKUP,
                user_id=user_id,
            )
            return PersonOnOrder.model_validate_json(reply.body)

        answer = await ask_as("erasure")
        assert answer.subject == SubjectHasher(PRODUCTION_KEY).of_order_person(
            order["order_id"], "recipient"
        )
        assert dead_letters == []

        refused = await ask_as("consent")
        assert refused.subject is None and "only user erasure may send it" in (refused.error or "")
        [dead_letter] = dead_letters
        assert dead_letter.queue == "orders.person-lookup"
        assert "sent by user consent" in dead_letter.reason


async def test_a_disclosure_log_from_before_roles_keeps_its_people_with_the_role_unknown(
    tmp_path: Path,
) -> None:
    """A SQLite file written before the log kept roles: opened, its people are all there, as
    whom unknown, and an erasure still replaces them."""
    before_roles = """CREATE TABLE disclosure_subjects (
        disclosure_id TEXT NOT NULL REFERENCES disclosures ON DELETE CASCADE,
        subject TEXT NOT NULL,
        PRIMARY KEY (disclosure_id, subject)
    ) WITHOUT ROWID"""
    with sqlite3.connect(tmp_path / "disclosure.sqlite3") as connection:
        for statement in SCHEMA:
            connection.execute(before_roles if statement == SUBJECTS_TABLE else statement)
        connection.execute(
            "INSERT INTO disclosures (disclosure_id, order_id, provider_id, message_id, status, "
            "product_ids, recorded_at) VALUES ('d-1', 'KK-1', 'spa-oy', 'd-1', 'sent', '[]', 0)"
        )
        connection.executemany(
            "INSERT INTO disclosure_subjects VALUES ('d-1', ?)", [("s-aino",), ("s-eino",)]
        )
    settings = DisclosureSettings(data_dir=str(tmp_path), identity_hash_key="unit-test-key")
    database = await connect_database(settings)
    try:
        store = await open_disclosure_store(database)
        [entry] = await store.log_of("KK-1")
        assert entry.people == (Named("s-aino"), Named("s-eino"))
        await store.replace_subject("s-aino", "erased:req-1")
        [entry] = await store.log_of("KK-1")
        assert entry.people == (Named("erased:req-1"), Named("s-eino"))

        # New entries name a person in both roles, which the old table's key refused.
        event = OrderPlaced.model_validate(order_placed(order_id="KK-2"), strict=False)
        [planned] = plan_disclosures(event, {})
        both = [Named("s-otto", "buyer"), Named("s-otto", "recipient")]
        await store.record_sent(planned.disclosure, both, datetime.now(UTC))
        [entry] = await store.log_of("KK-2")
        assert entry.people == tuple(both)
    finally:
        await database.close()
