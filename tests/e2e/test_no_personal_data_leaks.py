"""No personal data where it does not belong: a full run through the register (orders for two
providers, held and released disclosures, consent changes and an objection, broken input of
every kind, dead-letter listing and replay, lookups, an access report, erasures asked by staff
and by the web shop), then every service's log, the tool's error output, the health, readiness
and metrics endpoints, the dead-letter headers and the audit logs are searched for the test
people's data, and none of it is there. The AsyncAPI page and its "try it out" are not served.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import pytest

from shared import topology
from tests.e2e.harness import (
    Logins,
    QueueReader,
    Register,
    WebShop,
    eventually,
    rekisteri,
)
from tests.e2e.support import stored_audit_log
from tests.e2e.test_bad_input import catalogue
from tests.factories import (
    consent_updated,
    erasure_requested,
    item,
    marketing_objection,
    order_placed,
    person,
)

SINIKKA = {
    "first_name": "Sinikka",
    "last_name": "Pöyhönen",
    "email": "sinikka.poyhonen@example.fi",
    "phone": "+358 50 765 4321",
    "birth_date": "1961-07-15",
    "gender": "female",
    "address": {
        "street": "Ruusulankatu 17 C 31",
        "postal_code": "00250",
        "city": "Helsinki",
        "country": "FI",
    },
}
TAPIO = person("Tapio", "Kärkkäinen", "tapio.karkkainen@example.fi", phone="040 998 1122")
HELMI = {
    **SINIKKA,
    "first_name": "Helmi",
    "last_name": "Vuorenmaa",
    "email": "helmi.vuorenmaa@example.fi",
    "phone": "+358 45 300 2001",
    "birth_date": "1990-12-03",
    "address": {**SINIKKA["address"], "street": "Pohjoisranta 4 A 12"},
}
# The people of tests/e2e/test_bad_input.py's broken orders.
AINO = ("Aino", "Virtanen", "aino.virtanen@example.fi", "+358 40 123 4567", "1984-02-29")
SYRJALANKATU = "Syrjälänkatu 2 B 9"


@pytest.fixture(autouse=True)
def quick_erasure_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seconds instead of hours: the services started by the test inherit these."""
    monkeypatch.setenv("ERASURE_RETRY_FIRST", "PT1S")
    monkeypatch.setenv("ERASURE_RETRY_MAX", "PT2S")
    monkeypatch.setenv("ERASURE_CHECK_INTERVAL", "PT0.2S")


def values_of(people: list[dict[str, Any]]) -> set[str]:
    """Names, emails, phones, streets and birth dates: what must appear nowhere."""
    found = set()
    for someone in people:
        for field in ("first_name", "last_name", "email", "phone", "birth_date"):
            if someone.get(field):
                found.add(someone[field])
        if "address" in someone:
            found.add(someone["address"]["street"])
    return found


PERSONAL_DATA = values_of([SINIKKA, TAPIO, HELMI]) | set(AINO) | {SYRJALANKATU}


def leaks(text: str) -> list[str]:
    lowered = text.lower()
    return sorted(value for value in PERSONAL_DATA if value.lower() in lowered)


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def http_post(port: int, path: str) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=b"{}", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


class Operator:
    """Runs `rekisteri` and keeps everything it wrote to standard error."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stderr: list[str] = []

    def __call__(self, *arguments: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = rekisteri(self.url, *arguments)
        self.stderr.append(done.stderr)
        assert (done.returncode == 0) == ok, done.stderr
        return done

    async def later(self, *arguments: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(self, *arguments, ok=ok)


async def refused_command_about(staff_url: str, staff_user: str, body: bytes) -> str:
    """A command the CLI would not send (it validates first), straight to the service."""
    connection = await aio_pika.connect(staff_url)
    async with connection:
        channel = await connection.channel()
        replies = await channel.get_queue(topology.DIRECT_REPLY_TO, ensure=False)
        answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def on_reply(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            answer.set_result(message.body)

        await replies.consume(on_reply, no_ack=True)
        ops = await channel.get_exchange(topology.OPS_EXCHANGE, ensure=False)
        await ops.publish(
            aio_pika.Message(body, reply_to=topology.DIRECT_REPLY_TO, user_id=staff_user),
            routing_key="disclosure",
        )
        return (await asyncio.wait_for(answer, 10)).decode()


async def test_no_personal_data_in_logs_errors_health_metrics_dead_letters_or_audit(
    register: Register, logins: Logins, staff_url: str, webshop_url: str, vhost_url: str
) -> None:
    operator = Operator(staff_url)
    await operator.later("providers", "add", "spa-oy", "--name", "Kylpylä Oy", "--country", "FI")
    await operator.later("providers", "add", "kart-oy", "--name", "Kart Oy", "--country", "SE")
    await operator.later("providers", "suspend", "kart-oy")
    await operator.later("providers", "credentials", "spa-oy")

    two_providers = order_placed(
        buyer=SINIKKA,
        recipient=TAPIO,
        items=[item("spa-oy", "p-spa"), item("kart-oy", "p-kart"), item("nobody-oy", "p-x")],
    )
    gift = order_placed(buyer=HELMI, recipient=person("Sinikka", "Pöyhönen", SINIKKA["email"]))
    async with WebShop(webshop_url) as shop:
        for order in (two_providers, gift):
            await shop.publish("order.placed", order, message_id=order["event_id"])
        for message_id, body in catalogue().items():
            await shop.publish("order.placed", body, message_id=message_id)
        await shop.publish("order.cancelled", two_providers, message_id="unroutable")
        await shop.publish("consent.updated", consent_updated(SINIKKA["email"], marketing=True))
        await shop.publish("consent.updated", consent_updated(HELMI["email"]))  # names nothing
        await shop.publish("marketing.objection", marketing_objection(SINIKKA["email"]))
        await shop.publish("marketing.objection", b'{"email": "' + HELMI["email"].encode())
        await shop.publish(
            "erasure.requested", {**erasure_requested(email=TAPIO["email"]), "reason": 1}
        )

    await eventually(
        lambda: json.loads(operator("disclosures", "held", "--json").stdout),
        lambda held: len(held) == 2,
    )
    await operator.later("providers", "activate", "kart-oy")
    await operator.later("disclosures", "release", two_providers["order_id"])
    await operator.later("disclosures", "list", "--email", SINIKKA["email"])
    await operator.later("disclosures", "list", "--email", "Helmi.Vuorenmaa@Example.fi")
    await eventually(
        lambda: json.loads(
            operator("consent", "show", "--email", SINIKKA["email"], "--json").stdout
        ),
        lambda shown: shown["objection"] is not None,
    )
    await operator.later("consent", "show", "--email", "nobody@example.fi")
    await operator.later("marketing", "audience", "--purpose", "newsletter")
    await operator.later("providers", "add", "bad id", "--name", TAPIO["last_name"], ok=False)
    await operator.later("disclosures", "list", "--email", "not-an-email", ok=False)
    listed = await eventually(
        lambda: json.loads(operator("dlq", "list", "--json").stdout),
        # The catalogue in three services' queues, the unroutable one, three broken events.
        lambda rows: len(rows) >= 3 * len(catalogue()) + 4,
    )
    assert not leaks(json.dumps(listed)), "dead-letter previews are masked"
    await operator.later("dlq", "replay", listed[0]["id"])
    await operator.later("report", "--email", SINIKKA["email"])
    await operator.later(
        "erasure", "request", "--email", SINIKKA["email"], "--reason", "subject-request", "--wait"
    )
    form = erasure_requested(email=HELMI["email"])
    async with WebShop(webshop_url) as shop:
        await shop.publish("erasure.requested", form)
    await eventually(
        lambda: json.loads(operator("erasure", "status", form["request_id"], "--json").stdout),
        lambda request: request["status"] == "completed",
    )
    await operator.later("erasure", "list")
    await operator.later("status")
    await operator.later("audit", "list")
    # What the retention sweeps would delete ten years on: counts by category, nothing else.
    await operator.later("retention", "preview", "--as-of", "2036-12-31")
    both = {"command": "disclosures.list", "email": SINIKKA["email"], "provider_id": "spa-oy"}
    refused = await refused_command_about(
        staff_url, str(urlsplit(staff_url).username), json.dumps(both).encode()
    )
    assert "either an email or a provider id" in refused and not leaks(refused), refused

    for service in register.services.values():
        for path in ("/health", "/ready", "/metrics"):
            status, body = http_get(service.port, path)
            assert status == 200, (service.name, path, status)
            assert not leaks(body), (service.name, path)
        for path in ("/asyncapi", "/docs/asyncapi", "/asyncapi/try"):
            assert http_get(service.port, path)[0] == 404, (service.name, path)
        assert http_post(service.port, "/asyncapi/try") == 404, service.name

    async with QueueReader(vhost_url) as admin:
        dead_letters = await admin.receive(
            "dead-letter.orders.order-placed", len(catalogue()), within=30
        )
    for message in dead_letters:
        assert not leaks(json.dumps(message.headers, default=str)), message.headers

    register.stop()
    logs = register.logs()
    assert "disclosure sent" in logs and "dead-lettered a message" in logs, "the logs were read"
    assert not leaks(logs), leaks(logs)
    assert not leaks("\n".join(operator.stderr)), leaks("\n".join(operator.stderr))
    for service in register.services:
        audited = await stored_audit_log(register, service)
        assert audited, f"{service} audited the commands it was sent"
        assert not leaks(json.dumps(audited, default=str)), service
