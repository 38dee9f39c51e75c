"""The provider registry, held disclosures and the disclosure log, with the services as processes
and the real `rekisteri`."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from shared.contracts.disclosures import disclosure_id_for
from tests.e2e.harness import QueueReader, Register, WebShop, rekisteri
from tests.e2e.support import add_provider, json_document, listed, run
from tests.factories import full_person, item, order_placed, person


async def test_a_suspended_provider_gets_nothing_until_activated_and_released_exactly_once(
    register: Register, vhost_url: str, staff_url: str, webshop_url: str
) -> None:
    add_provider(staff_url)
    add_provider(staff_url, "kart-oy", "Kart Oy", "SE")
    assert "kart-oy (Kart Oy, SE) is suspended" in run(staff_url, "providers", "suspend", "kart-oy")

    buyer = full_person("Aino", "Virtanen", "aino.virtanen@example.fi")
    # kart-oy's item first: its disclosure is held before spa-oy's is sent.
    first = order_placed(
        buyer=buyer,
        recipient=person("Eino", "Korhonen", "eino.korhonen@example.fi"),
        items=[item("kart-oy", "p-kart"), item("spa-oy", "p-spa")],
    )
    later = order_placed(items=[item("kart-oy", "p-later")])
    async with WebShop(webshop_url) as shop, QueueReader(vhost_url) as providers:
        await shop.publish("order.placed", first, message_id=first["event_id"])
        [to_spa] = await providers.receive("disclosures.spa-oy", 1)
        assert json.loads(to_spa.body)["order_id"] == first["order_id"]

        [held] = listed(staff_url, "disclosures", "held")
        assert (held["order_id"], held["provider_id"]) == (first["order_id"], "kart-oy")
        assert held["reason"] == "provider kart-oy is suspended"
        assert "virtanen" not in json.dumps(held).lower()

        still = run(staff_url, "disclosures", "release", first["order_id"])
        assert "still held for kart-oy: provider kart-oy is suspended" in still

        assert "is active" in run(staff_url, "providers", "activate", "kart-oy")
        released = run(staff_url, "disclosures", "release", first["order_id"])
        assert released.strip() == f"sent order {first['order_id']}'s disclosure to kart-oy"
        [to_kart] = await providers.receive("disclosures.kart-oy", 1)
        disclosure = json.loads(to_kart.body)
        assert to_kart.message_id == str(disclosure_id_for(first["order_id"], "kart-oy"))
        assert [i["product_id"] for i in disclosure["items"]] == ["p-kart"]
        assert disclosure["buyer"] == buyer

        again = run(staff_url, "disclosures", "release", first["order_id"])
        assert "nothing held to release" in again
        # A later order is the next thing kart-oy gets: the released one did not come twice.
        await shop.publish("order.placed", later, message_id=later["event_id"])
        [next_message] = await providers.receive("disclosures.kart-oy", 1)
        assert json.loads(next_message.body)["order_id"] == later["order_id"]
    assert "(none)" in run(staff_url, "disclosures", "held")

    by_person = listed(staff_url, "disclosures", "list", "--email", "Aino.Virtanen@example.FI")
    assert sorted((d["order_id"], d["provider_id"]) for d in by_person) == [
        (first["order_id"], "kart-oy"),
        (first["order_id"], "spa-oy"),
    ]
    assert all("buyer.address.street" in d["fields"] for d in by_person)
    by_recipient = listed(staff_url, "disclosures", "list", "--email", "eino.korhonen@example.fi")
    assert len(by_recipient) == 2
    to_kart_log = listed(staff_url, "disclosures", "list", "--provider", "kart-oy")
    assert [d["order_id"] for d in to_kart_log] == [later["order_id"], first["order_id"]]
    assert to_kart_log[1]["message_id"] == to_kart.message_id
    assert to_kart_log[1]["product_ids"] == ["p-kart"]

    logs = register.logs()
    assert "virtanen" not in logs.lower() and "korhonen" not in logs.lower()


async def test_provider_changes_are_recorded_and_a_country_outside_the_eea_is_refused(
    register: Register, staff_url: str
) -> None:
    add_provider(staff_url)
    updated = run(
        staff_url,
        "providers",
        "update",
        "spa-oy",
        "--country",
        "ee",
        "--contact-email",
        "privacy@spa.example",
    )
    assert "updated provider spa-oy (Kylpylä Oy, EE)" in updated

    refused = rekisteri(staff_url, "providers", "update", "spa-oy", "--country", "US")
    assert refused.returncode == 1
    assert "outside the European Economic Area" in refused.stderr
    unknown = rekisteri(staff_url, "providers", "suspend", "nobody-oy")
    assert unknown.returncode == 1 and "provider nobody-oy is not registered" in unknown.stderr

    shown = json_document(staff_url, "providers", "show", "spa-oy", "--json")
    assert (shown["country"], shown["contact_email"]) == ("EE", "privacy@spa.example")
    # Who changed it: the RabbitMQ user `rekisteri` logged in as, verified by the broker.
    anna = urlsplit(staff_url).username
    assert shown["changed_by"] == anna and shown["changed_at"] > shown["created_at"]
    assert "privacy@spa.example" in run(staff_url, "providers", "show", "spa-oy")
