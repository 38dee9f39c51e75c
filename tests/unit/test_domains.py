"""Each service's rules, without a broker or a database."""

from __future__ import annotations

import pytest

from services.disclosure.domain import (
    ProviderRefused,
    disclosed_fields,
    hold_reason,
    plan_disclosures,
    provider_amqp_url,
    provider_changes,
    register_provider,
)
from services.orders.domain import order_from_event, profiles_from_order
from shared.contracts.disclosures import disclosure_id_for
from shared.contracts.providers import AddProvider, Provider, UpdateProvider
from shared.identity import SubjectHasher, normalise_email
from tests.factories import full_person, item, person
from tests.unit.support import HASHER, NOW, order_event


def provider(provider_id: str, country: str = "FI", status: str = "active") -> Provider:
    return Provider(
        provider_id=provider_id,
        name=provider_id.title(),
        country=country,
        status=status,  # type: ignore[arg-type]
        created_at=NOW,
        created_by="ops",
        changed_at=NOW,
        changed_by="ops",
    )


# --- identity --------------------------------------------------------------------------------


def test_one_mailbox_spelled_two_ways_is_one_subject() -> None:
    assert HASHER(" Aino.Virtanen@Example.FI ") == HASHER("aino.virtanen@example.fi")
    assert normalise_email(
        "\uff21\uff29\uff2e\uff2f@example.fi"
    )  # full-width AINO == "aino@example.fi"


def test_the_subject_hash_depends_on_the_secret_key() -> None:
    assert HASHER("aino@example.fi") != SubjectHasher("other-key")("aino@example.fi")
    assert "aino" not in HASHER("aino@example.fi")


# --- orders ----------------------------------------------------------------------------------


def test_an_order_keeps_ledger_lines_apart_from_the_people() -> None:
    event = order_event(items=[item("spa-oy", "p-1", 2, 1000), item("kart-oy", "p-2", 1, 500)])
    recorded = order_from_event(event, HASHER, NOW)
    assert recorded.total_cents == 2500
    assert [line.provider_id for line in recorded.lines] == ["spa-oy", "kart-oy"]
    assert recorded.buyer_subject == HASHER(event.buyer.email)
    assert recorded.buyer["first_name"] == event.buyer.first_name


def test_a_recipient_without_email_is_named_by_their_place_on_the_order_with_no_profile() -> None:
    event = order_event(recipient=person("Eino", "Korhonen", None))
    recorded = order_from_event(event, HASHER, NOW)
    assert recorded.recipient_subject == HASHER.of_order_person(event.order_id, "recipient")
    assert recorded.recipient_subject != HASHER.of_order_person(event.order_id, "buyer")
    assert recorded.recipient == {"first_name": "Eino", "last_name": "Korhonen"}
    assert [p.role for p in profiles_from_order(recorded)] == ["buyer"]


# --- disclosure ------------------------------------------------------------------------------


def test_each_provider_gets_only_its_own_items_and_a_stable_id() -> None:
    event = order_event(
        items=[item("spa-oy", "p-1"), item("kart-oy", "p-2"), item("spa-oy", "p-3")]
    )
    planned = plan_disclosures(
        event, {"spa-oy": provider("spa-oy"), "kart-oy": provider("kart-oy")}
    )
    assert [p.disclosure.provider_id for p in planned] == ["spa-oy", "kart-oy"]
    spa = planned[0].disclosure
    assert [i.product_id for i in spa.items] == ["p-1", "p-3"]
    assert spa.disclosure_id == disclosure_id_for(event.order_id, "spa-oy")
    assert not any(p.held for p in planned)


@pytest.mark.parametrize(
    ("registered", "reason"),
    [
        (None, "provider spa-oy is not registered"),
        (provider("spa-oy", status="suspended"), "provider spa-oy is suspended"),
        (provider("spa-oy", country="US"), "outside the EEA"),
    ],
)
def test_a_provider_that_may_not_receive_data_is_held_with_the_reason(
    registered: Provider | None, reason: str
) -> None:
    result = hold_reason("spa-oy", registered)
    assert result is not None and reason in result


def test_disclosed_fields_list_what_was_sent_and_nothing_absent() -> None:
    event = order_event(
        buyer=full_person("Aino", "Virtanen", "aino@example.fi"),
        recipient=person("Eino", "Korhonen", None),
    )
    fields = disclosed_fields(plan_disclosures(event, {})[0].disclosure)
    assert "buyer.address.street" in fields and "buyer.birth_date" in fields
    assert "recipient.first_name" in fields and "recipient.email" not in fields


@pytest.mark.parametrize("country", ["FI", "SE", "IS", "LI", "NO"])
def test_providers_in_the_eea_can_be_registered(country: str) -> None:
    command = AddProvider(provider_id="spa-oy", name="Spa Oy", country=country)
    assert register_provider(command, "ops-anna", NOW).created_by == "ops-anna"


@pytest.mark.parametrize("country", ["US", "GB", "CH"])
def test_providers_outside_the_eea_are_refused_naming_the_rule(country: str) -> None:
    command = AddProvider(provider_id="spa-oy", name="Spa Oy", country=country)
    with pytest.raises(ProviderRefused, match="European Economic Area"):
        register_provider(command, "ops-anna", NOW)


def test_an_active_provider_in_the_eea_may_receive_a_held_disclosure() -> None:
    assert hold_reason("spa-oy", provider("spa-oy", country="NO")) is None


def test_an_update_changes_only_the_fields_given() -> None:
    command = UpdateProvider(provider_id="spa-oy", country="SE")
    assert provider_changes(command) == {"country": "SE"}


def test_an_update_to_a_country_outside_the_eea_is_refused_naming_the_rule() -> None:
    command = UpdateProvider(provider_id="spa-oy", name="Spa Oy", country="US")
    with pytest.raises(ProviderRefused, match="not changed: US is outside the European Economic"):
        provider_changes(command)


def test_an_update_that_changes_nothing_is_refused() -> None:
    with pytest.raises(ProviderRefused, match="give a name, a country or a contact email"):
        provider_changes(UpdateProvider(provider_id="spa-oy"))


def test_the_provider_url_carries_the_new_login_and_an_explicit_port() -> None:
    assert (
        provider_amqp_url("amqp://broker.example/register", "provider-spa-oy", "s3cret-_x")
        == "amqp://provider-spa-oy:s3cret-_x@broker.example:5672/register"
    )
    assert provider_amqp_url("amqps://broker.example:5999/%2F", "u", "p") == (
        "amqps://u:p@broker.example:5999/%2F"
    )
