"""The retention policy applied by the running register: the services as processes against the
real RabbitMQ, the web shop and staff with their own logins, staff with the real `rekisteri`.

A preview deletes nothing: it counts nothing today and everyone (each category) ten years on.
Dead letters go 30 days after they were set aside, by the sweep each service runs when it
starts and then daily; `rekisteri status` warns of them from day 7; the sweep is counted in
`/metrics` and logged with counts only.
"""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aio_pika

from shared import topology
from shared.messaging import REJECTED_AT_HEADER
from tests.e2e.harness import QueueReader, Register, WebShop, eventually, rekisteri
from tests.e2e.support import add_provider, json_document, listed, run
from tests.factories import consent_updated, item, order_placed, person

AINO = person("Aino", "Retentio-Virtanen", "aino.retentio@example.fi")
EINO = person("Eino", "Retentio-Korhonen", "eino.retentio@example.fi")


def preview(staff_url: str, *arguments: str) -> dict[str, int]:
    return json_document(staff_url, "retention", "preview", "--json", *arguments)


def dead_letters(staff_url: str) -> list[dict[str, Any]]:
    return listed(staff_url, "dlq", "list")


async def test_a_preview_counts_nothing_today_and_everyone_ten_years_on(
    register: Register, staff_url: str, webshop_url: str, vhost_url: str
) -> None:
    add_provider(staff_url)
    gift = order_placed(
        buyer=AINO, recipient=EINO, items=[item("spa-oy", "p-1"), item("nobody-oy", "p-2")]
    )
    async with WebShop(webshop_url) as shop, QueueReader(vhost_url) as provider:
        await shop.publish(topology.ORDER_PLACED, gift)
        await shop.publish(topology.CONSENT_UPDATED, consent_updated(AINO["email"], marketing=True))
        # Not an order: each of the three services that take orders sets it aside.
        await shop.publish(topology.ORDER_PLACED, b'{"order_id": "KK-broken"}')
        await provider.receive(topology.provider_queue_name("spa-oy"), 1)
    await eventually(lambda: dead_letters(staff_url), lambda rows: len(rows) == 3)
    report = await eventually(
        lambda: json_document(staff_url, "report", "--email", AINO["email"]),
        lambda r: bool(r["services"]["orders"]["orders"] and r["services"]["consent"]["history"]),
    )

    today = preview(staff_url)
    assert today == dict.fromkeys(
        [
            "buyer",
            "recipient",
            "ledger",
            "disclosure-log",
            "held-disclosure",
            "dead-letter",
            "audit-log",
            "erasure-record",
        ],
        0,
    )
    ten_years_on = (date.today() + timedelta(days=3653)).isoformat()
    later = preview(staff_url, "--as-of", ten_years_on)
    assert later.pop("audit-log") > 0, "staff's commands so far"
    assert later == {
        "buyer": 2,  # the orders service's and the consent service's record of Aino
        "recipient": 1,  # Eino, in the gift's order
        "ledger": 0,  # the order still names them: its ledger goes the day after they do
        "disclosure-log": 2,  # what spa-oy got, and the disclosure held for nobody-oy
        "held-disclosure": 1,
        "dead-letter": 3,
        "erasure-record": 1,  # the access request the report above recorded
    }

    # Nothing was deleted: the same counts, the same data.
    assert preview(staff_url, "--as-of", ten_years_on)["buyer"] == 2
    again = json_document(staff_url, "report", "--email", AINO["email"])
    assert again["services"]["orders"]["orders"] == report["services"]["orders"]["orders"]
    assert len(dead_letters(staff_url)) == 3

    # The table says which service holds what.
    table = run(staff_url, "retention", "preview", "--as-of", ten_years_on)
    assert f"a sweep on {ten_years_on} would delete:" in table
    assert "orders 1, consent 1" in table
    refused = rekisteri(staff_url, "retention", "preview", "--as-of", "31.12.2030")
    assert refused.returncode == 2 and "%Y-%m-%d" in refused.stderr


def metric(port: int, service: str, category: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    labels = f'category="{category}",service="{service}"'
    for line in text.splitlines():
        if line.startswith("register_retention_deleted_total{") and labels in line:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {labels} in the metrics")


async def test_dead_letters_are_warned_of_from_day_7_and_deleted_after_day_30(
    register: Register, staff_url: str, vhost_url: str
) -> None:
    source = topology.order_placed_subscription("orders").queue.name
    now = datetime.now(UTC)
    async with QueueReader(vhost_url) as admin:
        assert admin.channel is not None
        exchange = await admin.channel.get_exchange(topology.DEAD_LETTER_EXCHANGE, ensure=False)
        for days, order_id in ((40, "KK-old-dead-letter"), (10, "KK-new-dead-letter")):
            body = json.dumps({"order_id": order_id, "buyer": {"email": "x@example.fi"}})
            await exchange.publish(
                aio_pika.Message(
                    body.encode(),
                    headers={REJECTED_AT_HEADER: (now - timedelta(days=days)).isoformat()},
                ),
                routing_key=source,
            )

    status = rekisteri(staff_url, "status")
    assert status.returncode == 0, status.stderr
    assert "DEAD LETTERS, OLDEST 40 DAYS" in status.stdout
    assert "dead letters waiting 7 days or more: dead-letter.orders.order-placed" in status.stderr
    assert "deleted 30 days after the message was set aside" in status.stderr

    # The orders service sweeps as it starts: the 40 days old goes, the 10 days old stays.
    port = register.services["orders"].port
    before = metric(port, "orders", "dead-letter")
    register.stop(["orders"])
    register.start(["orders"])
    left = await eventually(lambda: dead_letters(staff_url), lambda rows: len(rows) == 1)
    assert "KK-new-dead-letter" in left[0]["preview"]
    assert metric(port, "orders", "dead-letter") == 1.0
    assert before == 0.0, "a fresh process counts from 0"
    log = register.services["orders"].log()
    swept = [line for line in log.splitlines() if "retention sweep" in line]
    assert any("1 dead-letter record(s) deleted" in line for line in swept)
    assert not [line for line in swept if "x@example.fi" in line]
    status = rekisteri(staff_url, "status")
    assert "DEAD LETTERS, OLDEST 10 DAYS" in status.stdout
