"""The permission table (shared/permissions.py): what it grants, and that it covers every queue
the services consume. The broker's side of the story is in tests/e2e/test_permissions.py."""

from __future__ import annotations

import importlib
import re

from faststream.rabbit import RabbitBroker

from shared import topology
from shared.permissions import (
    SERVICE_ROLES,
    TopicPermissions,
    parties,
    provider_party,
    register_topology,
    service_party,
    service_subscriptions,
    staff_party,
    webshop_party,
)
from shared.runtime import runtime_router
from shared.settings import ServiceSettings


def matches(pattern: str, name: str) -> bool:
    """As RabbitMQ matches a permission: the regular expression anywhere in the name."""
    return re.search(pattern, name) is not None


def consumed_by_the_code(service: str) -> set[tuple[str, str, str]]:
    """(queue, exchange, routing key) of every subscriber the service's process has."""
    settings_module = importlib.import_module(f"services.{service}.settings")
    handlers = importlib.import_module(f"services.{service}.handlers")
    settings_class = getattr(settings_module, f"{service.capitalize()}Settings")
    assert issubclass(settings_class, ServiceSettings)
    settings = settings_class()
    subscribers = [
        *handlers.build_router(None, settings).subscribers,
        *runtime_router(settings, RabbitBroker()).subscribers,
    ]
    return {(s.queue.name, s.exchange.name, s.queue.routing_key) for s in subscribers}


def test_the_table_names_every_queue_each_service_consumes() -> None:
    assert set(SERVICE_ROLES) == set(topology.SERVICES)
    for service in topology.SERVICES:
        in_table = {
            (s.queue_name, s.exchange.name, s.routing_key) for s in service_subscriptions(service)
        }
        assert in_table == consumed_by_the_code(service), (
            f"the {service} service's queues and SERVICE_ROLES['{service}'] in "
            "shared/permissions.py differ: add the queue to the table"
        )


def test_a_service_reads_its_own_queues_and_declares_or_binds_none() -> None:
    for service in topology.SERVICES:
        rights = service_party(service).permissions
        for other in topology.SERVICES:
            for subscription in service_subscriptions(other):
                queue = subscription.queue_name
                dead_letters = topology.dead_letter_queue(queue).name
                assert matches(rights.read, queue) == (other == service), (service, queue)
                if other != service:
                    assert not matches(rights.read, dead_letters), (service, dead_letters)
                # Provisioning declared and bound them: no service may declare, delete or bind
                # a queue of the register's, its own included.
                for pattern in (rights.write, rights.configure):
                    assert not matches(pattern, queue), (service, queue)
                    assert not matches(pattern, dead_letters), (service, dead_letters)


def test_provisioning_declares_and_binds_every_queue_as_the_services_consume_it() -> None:
    declared = register_topology()
    bindings = {(b.queue, b.exchange, b.routing_key) for b in declared.bindings}
    queues = {queue.name: queue for queue in declared.queues}
    exchanges = {exchange.name for exchange in declared.exchanges}
    for service in topology.SERVICES:
        for queue, exchange, routing_key in consumed_by_the_code(service):
            assert (queue, exchange, routing_key) in bindings, (service, queue)
            assert exchange in exchanges, (service, exchange)
            dead_lettering = (queues[queue].arguments or {}).get("x-dead-letter-exchange")
            if dead_lettering:
                dead_letters = topology.dead_letter_queue(queue).name
                assert (dead_letters, dead_lettering, queue) in bindings, (service, queue)
    assert (topology.UNROUTABLE_QUEUE, topology.WEBSHOP_UNROUTABLE_EXCHANGE) in {
        (queue, exchange) for queue, exchange, _ in bindings
    }
    assert not any(queue.startswith(topology.PROVIDER_QUEUE_PREFIX) for queue in queues), (
        "providers' queues are made when each provider is registered"
    )


def test_only_the_disclosure_service_may_send_to_providers_and_no_service_sends_commands() -> None:
    for service in topology.SERVICES:
        rights = service_party(service).permissions
        assert matches(rights.write, topology.DISCLOSURES_EXCHANGE) == (service == "disclosure")
        assert matches(rights.configure, "disclosures.spa-oy") == (service == "disclosure")
        # Erasing a person takes their messages out of the providers' dead-letter queues too.
        assert matches(rights.read, "dead-letter.disclosures.spa-oy") == (service == "disclosure")
        assert not matches(rights.write, topology.OPS_EXCHANGE), service
        # Every service answers commands through the default exchange (direct reply-to).
        assert matches(rights.write, "amq.default"), service


def test_the_web_shop_publishes_to_its_exchange_only() -> None:
    rights = webshop_party().permissions
    assert (rights.configure, rights.read) == ("^$", "^$")
    assert matches(rights.write, "webshop")
    for name in ("webshop.unroutable", "ops", "disclosures", "amq.default", "dead-letter"):
        assert not matches(rights.write, name), name


def test_staff_send_commands_and_read_nothing() -> None:
    rights = staff_party("anna").permissions
    assert (rights.configure, rights.write, rights.read) == ("^$", "^ops$", "^$")
    assert staff_party("anna").name == "staff-anna"


def test_a_provider_may_read_its_own_queue_and_nothing_else() -> None:
    rights = provider_party("spa-oy").permissions
    assert rights.read == r"^disclosures\.spa\-oy$"
    for other in (
        "disclosures.spa-oy2",
        "disclosures.spa-o",
        "disclosuresXspa-oy",
        "dead-letter.disclosures.spa-oy",
        "disclosures",
        "webshop",
    ):
        assert not matches(rights.read, other), other
    assert (rights.configure, rights.write) == ("^$", "^$")


def test_every_pattern_is_anchored_so_it_grants_whole_names_only() -> None:
    for party in parties():
        for pattern in vars(party.permissions).values():
            assert pattern.startswith("^") and pattern.endswith("$"), (party.name, pattern)
    assert not matches(service_party("orders").permissions.read, "xorders.order-placed")


def topic_rights(party_name: str, exchange: str) -> TopicPermissions | None:
    party = next(party for party in parties() if party.name == party_name)
    return next((t for t in party.topic_permissions if t.exchange == exchange), None)


def test_on_the_internal_exchange_each_service_publishes_only_its_own_events() -> None:
    events = topology.REGISTER_EVENTS_EXCHANGE
    publishes = {
        "orders": {"erasure.reported"},
        "consent": {"consent.changed", "erasure.reported"},
        "disclosure": {"erasure.reported"},
        "erasure": {f"erase.subject.{service}" for service in topology.ERASURE_PARTICIPANTS},
    }
    keys = set().union(*publishes.values()) | {"erase.subject.#", "erasure.requested", "x"}
    for service, own in publishes.items():
        rights = topic_rights(service, events)
        assert rights is not None, service
        for key in keys:
            assert matches(rights.write, key) == (key in own), (service, key)


def test_no_service_may_bind_a_queue_to_an_exchange_but_the_providers_to_disclosures() -> None:
    """Binding takes read on the exchange: without it a service's stolen login cannot bind a
    queue of its own to `ops`, `webshop`, `register.events` or `dead-letter` and receive copies
    of what is meant for others (RabbitMQ checks binding keys on topic exchanges only)."""
    for service in topology.SERVICES:
        party = service_party(service)
        for exchange in register_topology().exchanges:
            may_bind = matches(party.permissions.read, exchange.name)
            providers = (service, exchange.name) == ("disclosure", topology.DISCLOSURES_EXCHANGE)
            assert may_bind == providers, (service, exchange.name)
        assert all(topics.read == "^$" for topics in party.topic_permissions), service
    # The disclosure service binds only providers' queues, and their dead letters not at all.
    disclosure = service_party("disclosure").permissions
    assert matches(disclosure.write, "disclosures.spa-oy")
    assert not matches(disclosure.write, "dead-letter.disclosures.spa-oy")
    assert not matches(disclosure.read, topology.DEAD_LETTER_EXCHANGE)


def test_only_the_orders_service_publishes_on_the_web_shops_exchange_with_any_key() -> None:
    webshop = topology.WEBSHOP_EXCHANGE
    orders = topic_rights("orders", webshop)
    assert orders is not None and matches(orders.write, "order.cancelled")
    for service in ("consent", "disclosure", "erasure"):
        assert topic_rights(service, webshop) is None, service
        assert not matches(service_party(service).permissions.write, webshop), service
    # The web shop, staff and providers have no topic permission: on `webshop` the web shop may
    # use any key (one nobody consumes lands in the unroutable catch-all).
    for party in (webshop_party(), staff_party("anna"), provider_party("spa-oy")):
        assert party.topic_permissions == [], party.name
