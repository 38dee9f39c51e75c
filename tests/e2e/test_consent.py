"""Consent end to end: the web shop's events → RabbitMQ → the consent service → `rekisteri`."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import pty
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aio_pika

from shared import topology
from shared.contracts.ops import OpsPage
from tests.e2e.harness import REPOSITORY, QueueReader, Register, WebShop, rekisteri
from tests.factories import (
    consent_updated,
    full_person,
    marketing_objection,
    order_placed,
    person,
)

AINO = "aino.virtanen@example.fi"
EINO = "eino.korhonen@example.fi"
WAIT = 30.0


def consent_of(url: str, email: str, until: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """`rekisteri consent show --json`, asked until the person's record satisfies `until`."""
    deadline = time.monotonic() + WAIT
    while True:
        shown = rekisteri(url, "consent", "show", "--email", email, "--json")
        assert shown.returncode == 0, shown.stderr
        report: dict[str, Any] = json.loads(shown.stdout)
        if until(report):
            return report
        assert time.monotonic() < deadline, f"never reached the expected state: {report}"


def audience(url: str, purpose: str, *options: str) -> list[dict[str, str]]:
    exported = rekisteri(url, "marketing", "audience", "--purpose", purpose, *options)
    assert exported.returncode == 0, exported.stderr
    assert "may be contacted" in exported.stderr
    return list(csv.DictReader(io.StringIO(exported.stdout, newline="")))


def emails(rows: list[dict[str, str]]) -> set[str]:
    return {row["email"] for row in rows}


def history_length(count: int) -> Callable[[dict[str, Any]], bool]:
    return lambda report: len(report["history"]) == count


async def test_an_objection_takes_a_buyer_out_of_every_audience_until_withdrawn(
    register: Register, vhost_url: str, staff_url: str, webshop_url: str, tmp_path: Path
) -> None:
    async with QueueReader(vhost_url) as internal:
        # Another of the register's services, listening for consent changes.
        assert internal.channel is not None
        events = await internal.channel.declare_exchange(
            topology.REGISTER_EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        changes = await internal.channel.declare_queue("test.consent-changed", durable=True)
        await changes.bind(events, routing_key=topology.CONSENT_CHANGED)

    first_order = order_placed(
        buyer=full_person("Aino", "Virtanen", AINO), newsletter=True, marketing=False
    )
    async with WebShop(webshop_url) as shop:
        await shop.publish("order.placed", first_order)
        await shop.publish(
            "order.placed",
            order_placed(buyer=person("Eino", "Korhonen", EINO), newsletter=False, marketing=True),
        )
        consent_of(staff_url, AINO, lambda r: r["in_audience"] == ["newsletter"])
        consent_of(staff_url, EINO, lambda r: r["in_audience"] == ["marketing"])
        assert emails(audience(staff_url, "marketing")) == {EINO}

        await shop.publish("consent.updated", consent_updated(AINO, marketing=True))
        consent_of(staff_url, AINO, lambda r: r["in_audience"] == ["newsletter", "marketing"])
        rows = audience(staff_url, "marketing")
        assert emails(rows) == {AINO, EINO}
        assert {"email": AINO, "first_name": "Aino", "last_name": "Virtanen"} in rows

        objection = marketing_objection(AINO)
        await shop.publish("marketing.objection", objection)
        await shop.publish("marketing.objection", objection)  # the web shop retried
        consent_of(staff_url, AINO, lambda r: r["objection"] is not None)
        assert emails(audience(staff_url, "marketing")) == {EINO}
        assert emails(audience(staff_url, "newsletter")) == set()

        # A later checkout with both boxes ticked does not lift the objection.
        await shop.publish(
            "order.placed",
            order_placed(buyer=person("Aino", "Laine", AINO), newsletter=True, marketing=True),
        )
        report = consent_of(staff_url, AINO, history_length(6))
        assert report["in_audience"] == [] and report["contact"]["last_name"] == "Laine"
        assert emails(audience(staff_url, "newsletter")) == set()

        await shop.publish("marketing.objection", marketing_objection(AINO, objected=False))
        consent_of(staff_url, AINO, lambda r: r["in_audience"] == ["newsletter", "marketing"])

        # A change that names no permission is refused, kept for staff with the reason.
        await shop.publish("consent.updated", consent_updated(AINO))
        async with QueueReader(vhost_url) as staff:
            [refused] = await staff.receive("dead-letter.consent.consent-updated", 1)
        reason = str(refused.headers["x-rejection-reason"])
        assert "names no permission" in reason and AINO not in reason

    output = tmp_path / "marketing.csv"
    audience(staff_url, "marketing", "--output", str(output))
    with output.open(newline="", encoding="utf-8") as exported:
        assert next(csv.reader(exported)) == ["email", "first_name", "last_name"]
        assert {
            row["email"] for row in csv.DictReader(exported, ["email", "first_name", "last_name"])
        } == {AINO, EINO}
    assert output.stat().st_mode & 0o077 == 0, "personal data readable by others"

    shown = rekisteri(staff_url, "consent", "show", "--email", AINO)
    assert shown.returncode == 0, shown.stderr
    assert "Aino Laine" in shown.stdout
    assert "objects → withdrawn" in shown.stdout and "not granted → granted" in shown.stdout
    assert first_order["event_id"] in shown.stdout

    # Announcements are at least once: the retried objection may have been announced twice,
    # under the same message id (subject and version).
    announced: dict[int, tuple[bool, list[str]]] = {}
    async with QueueReader(vhost_url) as internal:
        while len(announced) < 4:
            [message] = await internal.receive("test.consent-changed", 1)
            assert message.delivery_mode == 2 and message.message_id is not None
            change = json.loads(message.body)
            if change["subject"] == report["subject"]:
                announced[change["version"]] = (change["objected"], change["may_contact"])
    assert [announced[version] for version in sorted(announced)] == [
        (False, ["newsletter"]),
        (False, ["newsletter", "marketing"]),
        (True, []),
        (False, ["newsletter", "marketing"]),
    ]

    logs = register.logs()
    assert AINO not in logs and "Virtanen" not in logs and "Laine" not in logs


def export_on_a_terminal(url: str, output: Path) -> str:
    """Run the export with stderr on a pseudo-terminal, as at an operator's shell; its stderr."""
    controller, terminal = pty.openpty()
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rekisteri",
            "marketing",
            "audience",
            "--purpose",
            "newsletter",
            "--output",
            str(output),
        ],
        cwd=REPOSITORY,
        env={**os.environ, "RABBITMQ_URL": url},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=terminal,
    ) as process:
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal closed: the tool has exited
                break
            if not chunk:
                break
            shown += chunk
        assert process.wait(timeout=WAIT) == 0, shown
    os.close(controller)
    return shown.decode(errors="replace")


async def test_a_long_export_shows_progress_on_a_terminal_and_only_there(
    register: Register, staff_url: str, webshop_url: str, tmp_path: Path
) -> None:
    # More than one page of the export (500 people a page). Only the consent service is needed:
    # the others' queues keep the orders meanwhile.
    register.stop(["orders", "disclosure", "erasure"])
    buyers = [f"buyer.{number}@example.fi" for number in range(520)]
    async with WebShop(webshop_url) as shop:
        for email in buyers:
            await shop.publish(
                "order.placed", order_placed(buyer=person("Aino", "Virtanen", email))
            )
    deadline = time.monotonic() + 2 * WAIT
    while len(rows := audience(staff_url, "newsletter")) < len(buyers):
        assert time.monotonic() < deadline, f"only {len(rows)} of {len(buyers)} exported"
    assert emails(rows) == set(buyers)

    shown = export_on_a_terminal(staff_url, tmp_path / "newsletter.csv")
    assert "exporting newsletter" in shown and "100%" in shown
    quiet = rekisteri(staff_url, "marketing", "audience", "--purpose", "newsletter")
    assert quiet.stderr.strip() == "520 people may be contacted for newsletter; written"


async def test_an_export_that_breaks_off_fails_and_leaves_no_file(
    register: Register, vhost_url: str, staff_url: str, tmp_path: Path
) -> None:
    """A stand-in for the consent service answers the first page and then falls silent."""
    register.stop(["consent"])
    exports = tmp_path / "exports"
    exports.mkdir()
    output = exports / "audience.csv"
    async with QueueReader(vhost_url) as broken_service:
        assert broken_service.channel is not None
        requests = await broken_service.channel.get_queue(
            topology.ops_stream_subscription("consent").queue_name
        )
        exporting = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "rekisteri", "--timeout", "2", "marketing", "audience"),
            *("--purpose", "marketing", "--output", str(output)),
            cwd=REPOSITORY,
            env={**os.environ, "RABBITMQ_URL": staff_url},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        async with requests.iterator() as incoming:
            async for request in incoming:
                await request.ack()
                first = OpsPage(
                    sequence=0,
                    total=3,
                    rows=[{"email": AINO, "first_name": "Aino", "last_name": "Virtanen"}],
                )
                await broken_service.channel.default_exchange.publish(
                    aio_pika.Message(
                        first.model_dump_json().encode(), correlation_id=request.correlation_id
                    ),
                    routing_key=request.reply_to or "",
                    mandatory=False,  # a direct reply-to address counts as no queue
                )
                break
        _, stderr = await asyncio.wait_for(exporting.communicate(), WAIT)
    assert exporting.returncode == 1
    assert "stopped answering" in stderr.decode() and "incomplete" in stderr.decode()
    assert files_in(exports) == [], "a broken-off export left a file behind"


def files_in(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())
