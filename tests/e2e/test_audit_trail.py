"""Every staff action is attributable: the services record who did what, when and on whom, as the
broker vouched for the sender, and `rekisteri audit list` reads it all back."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from shared.identity import SubjectHasher
from tests.e2e.harness import Logins, Register, WebShop, eventually
from tests.e2e.support import add_provider, listed, run, stored_audit_log
from tests.factories import full_person, item, order_placed

E2E_KEY = "e2e-test-key"  # the services' IDENTITY_HASH_KEY in tests/e2e/harness.py


def audit(url: str, *arguments: str) -> list[dict[str, Any]]:
    return listed(url, "audit", "list", *arguments)


async def test_each_staff_members_commands_are_recorded_under_their_own_name(
    register: Register, logins: Logins, staff_url: str, webshop_url: str
) -> None:
    anna, ben = logins.staff["anna"], logins.staff["ben"]
    anna_user, ben_user = urlsplit(anna).username, urlsplit(ben).username
    add_provider(anna)
    run(ben, "providers", "suspend", "spa-oy")
    buyer = full_person("Aino", "Virtanen", "aino.virtanen@example.fi")
    order = order_placed(buyer=buyer, items=[item("spa-oy")])
    async with WebShop(webshop_url) as shop:
        await shop.publish("order.placed", order, message_id=order["event_id"])
        await shop.publish("order.placed", b"not json", message_id="broken")
    await eventually(lambda: listed(ben, "disclosures", "held"), lambda held: len(held) == 1)
    run(ben, "providers", "activate", "spa-oy")
    run(ben, "disclosures", "release", order["order_id"])
    run(anna, "disclosures", "list", "--email", "Aino.Virtanen@example.fi")
    run(anna, "dlq", "list")

    entries = audit(anna)
    by_command = {}
    for entry in reversed(entries):  # oldest first: the first of each kind
        by_command.setdefault((entry["actor"], entry["command"]), entry)
    added = by_command[(anna_user, "providers.add")]
    assert (added["service"], added["outcome"], added["targets"]) == (
        "disclosure",
        "ok",
        {"provider_id": "spa-oy"},
    )
    assert by_command[(ben_user, "providers.status")]["targets"]["status"] == "suspended"
    released = by_command[(ben_user, "disclosures.release")]
    assert released["targets"] == {"order_id": order["order_id"]}
    looked_up = by_command[(anna_user, "disclosures.list")]
    assert looked_up["subject"] == SubjectHasher(E2E_KEY)("aino.virtanen@example.fi")
    assert looked_up["count"] == 1
    # A dead-letter listing is asked of every service, and each records it.
    dead_letter_listings = [e for e in entries if e["command"] == "dlq.list"]
    assert {e["service"] for e in dead_letter_listings} == {
        "orders",
        "consent",
        "disclosure",
        "erasure",
    }
    assert "virtanen" not in json.dumps(entries).lower()
    assert entries == sorted(entries, key=lambda e: e["at"], reverse=True), "newest first"

    # Reading the audit log is recorded too, and the filters narrow it.
    only_ben = audit(anna, "--actor", ben_user)
    assert only_ben and all(entry["actor"] == ben_user for entry in only_ben)
    newest = entries[0]
    recent = audit(anna, "--since", newest["at"])
    assert {entry["command"] for entry in recent} == {"audit.list", newest["command"]}
    table = run(anna, "audit", "list", "--actor", anna_user, "--limit", "3")
    assert table.splitlines()[0].split() == [
        "AT",
        "SERVICE",
        "ACTOR",
        "COMMAND",
        "OUTCOME",
        "SUBJECT",
        "TARGETS",
        "COUNT",
    ]
    assert len(table.splitlines()) == 4

    # The log is in each service's own database, and holds no email.
    register.stop()
    stored = await stored_audit_log(register, "disclosure")
    assert len(stored) >= len([e for e in entries if e["service"] == "disclosure"])
    assert "aino.virtanen" not in json.dumps(stored, default=str).lower()
