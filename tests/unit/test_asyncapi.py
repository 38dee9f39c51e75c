"""docs/asyncapi.yaml is what `tools.asyncapi` generates (FastStream's generator over the four
services, and the addition), a sound AsyncAPI 3.0 document, and it describes every subscription
and publication of every service with its contract.

The structural checks stand in for the official AsyncAPI JSON Schema, which no PyPI package
ships. To validate against it as well, point ASYNCAPI_SCHEMA at `3.0.0-without-$id.json` from
the npm package `@asyncapi/specs` and have `jsonschema` installed.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from faststream.rabbit import RabbitBroker

from shared import topology
from tools import asyncapi

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "asyncapi.yaml"

COMPONENT_KEY = re.compile(r"^[\w.\-]+$")
RUNTIME_EXPRESSION = re.compile(r"^\$message\.(header|payload)#(/(([^/~])|(~[01]))*)*$")
PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
EXTENSION = re.compile(r"^x-[\w.\-]+$")

# The fields the AMQP bindings 0.3.0 define; the official schema refuses any other.
AMQP_CHANNEL_FIELDS = {"is", "exchange", "queue", "bindingVersion"}
AMQP_EXCHANGE_FIELDS = {"name", "type", "durable", "autoDelete", "vhost"}
AMQP_QUEUE_FIELDS = {"name", "durable", "exclusive", "autoDelete", "vhost"}
AMQP_EXCHANGE_TYPES = {"topic", "direct", "fanout", "default", "headers"}
AMQP_OPERATION_FIELDS = {
    "expiration",
    "userId",
    "cc",
    "priority",
    "deliveryMode",
    "mandatory",
    "bcc",
    "timestamp",
    "ack",
    "bindingVersion",
}
AMQP_MESSAGE_FIELDS = {"contentEncoding", "messageType", "bindingVersion"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi.build_document()


@pytest.fixture(scope="module")
def brokers() -> list[RabbitBroker]:
    return asyncapi.service_brokers()


def walk(node: Any, path: str = "#") -> Iterator[tuple[str, Any]]:
    """Every value in the document with its JSON pointer."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}/{index}")


def refs(node: Any) -> Iterator[tuple[str, str]]:
    for path, value in walk(node):
        if isinstance(value, dict) and isinstance(value.get("$ref"), str):
            yield path, value["$ref"]


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} points outside the document"
    node: Any = document
    for part in ref[2:].split("/"):
        key = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and key in node, f"{ref} does not resolve"
        node = node[key]
    return node


def channel_id(ref: str) -> str:
    match = re.fullmatch(r"#/channels/([^/]+)", ref)
    assert match, f"{ref} is not a channel"
    return match.group(1)


# --- the committed file ------------------------------------------------------------------------


def test_committed_document_is_what_the_code_generates() -> None:
    assert COMMITTED.exists(), "docs/asyncapi.yaml is missing: run `make asyncapi`"
    committed = COMMITTED.read_text(encoding="utf-8")
    generated = asyncapi.render()
    if committed != generated:
        diff = difflib.unified_diff(
            committed.splitlines(),
            generated.splitlines(),
            "docs/asyncapi.yaml (committed)",
            "python -m tools.asyncapi",
            lineterm="",
        )
        shown = "\n".join(list(diff)[:60])
        pytest.fail(
            "docs/asyncapi.yaml is stale: run `make asyncapi` and commit the result.\n" + shown
        )


def test_rendered_yaml_is_plain_data_equal_to_the_document(document: dict[str, Any]) -> None:
    rendered = asyncapi.render()
    assert rendered.startswith("# "), "the header comment saying the file is generated"
    assert "make asyncapi" in rendered.split("\n", 3)[0]
    assert not re.search(r"^\s*[\w$-]+: [&*]id\d+", rendered, re.M), "YAML anchors or aliases"
    assert yaml.safe_load(rendered) == json.loads(json.dumps(document))


def test_version_is_the_projects(document: dict[str, Any]) -> None:
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["version"] == asyncapi.project_version()
    assert document["info"]["title"] == "Kokemuskauppa customer register"


# --- AsyncAPI 3.0 structure --------------------------------------------------------------------


def test_every_ref_resolves_within_the_document(document: dict[str, Any]) -> None:
    for path, ref in refs(document):
        assert ref.startswith("#/"), f"{path}: {ref} is not local"
        resolve(document, ref)


def test_every_operation_uses_an_existing_channel_and_its_messages(
    document: dict[str, Any],
) -> None:
    channels = document["channels"]
    assert document["operations"]
    for name, operation in document["operations"].items():
        assert operation["action"] in {"send", "receive"}, name
        channel = channel_id(operation["channel"]["$ref"])
        assert channel in channels, f"{name}: no channel {channel}"
        messages = [message["$ref"] for message in operation["messages"]]
        assert messages, f"{name} names no message"
        for ref in messages:
            assert ref.startswith(f"#/channels/{channel}/messages/"), (
                f"{name}: {ref} is not a message of its channel {channel}"
            )
            resolve(document, ref)
        if "reply" in operation:
            reply = operation["reply"]
            reply_channel = channel_id(reply["channel"]["$ref"])
            assert reply_channel in channels, f"{name}: no reply channel {reply_channel}"
            for message in reply["messages"]:
                assert message["$ref"].startswith(f"#/channels/{reply_channel}/messages/"), name
                resolve(document, message["$ref"])
            assert RUNTIME_EXPRESSION.match(reply["address"]["location"]), name


def test_every_channel_message_is_a_component(document: dict[str, Any]) -> None:
    components = document["components"]["messages"]
    for name, channel in document["channels"].items():
        assert channel["messages"], f"channel {name} carries no message"
        for message in channel["messages"].values():
            ref = message["$ref"]
            assert ref.startswith("#/components/messages/"), f"{name}: {ref}"
            assert ref.rsplit("/", 1)[1] in components, f"{name}: {ref}"


def test_channel_parameters_are_exactly_the_addresss_placeholders(
    document: dict[str, Any],
) -> None:
    for name, channel in document["channels"].items():
        placeholders = set(PLACEHOLDER.findall(channel["address"] or ""))
        assert placeholders == set(channel.get("parameters", {})), name
        for parameter in channel.get("parameters", {}).values():
            if "location" in parameter:
                assert RUNTIME_EXPRESSION.match(parameter["location"]), name


def test_nothing_is_defined_but_unused(document: dict[str, Any]) -> None:
    operations = document["operations"].values()
    used_channels = {channel_id(operation["channel"]["$ref"]) for operation in operations} | {
        channel_id(operation["reply"]["channel"]["$ref"])
        for operation in operations
        if "reply" in operation
    }
    assert used_channels == set(document["channels"])

    used_messages = {
        ref.rsplit("/", 1)[1]
        for _, ref in refs(document["channels"])
        if ref.startswith("#/components/messages/")
    }
    assert used_messages == set(document["components"]["messages"])

    reachable: set[str] = set()
    pending = [ref for _, ref in refs(document["components"]["messages"])]
    while pending:
        name = pending.pop().rsplit("/", 1)[1]
        if name not in reachable:
            reachable.add(name)
            pending.extend(ref for _, ref in refs(document["components"]["schemas"][name]))
    assert reachable == set(document["components"]["schemas"])


def test_component_keys_are_valid(document: dict[str, Any]) -> None:
    for kind, components in document["components"].items():
        for key in components:
            assert COMPONENT_KEY.match(key), f"components/{kind}/{key}"


def test_amqp_bindings_use_only_the_fields_of_binding_0_3_0(document: dict[str, Any]) -> None:
    def amqp(owner: dict[str, Any]) -> dict[str, Any]:
        binding = owner.get("bindings", {}).get("amqp", {})
        assert binding.get("bindingVersion", "0.3.0") == "0.3.0"
        return {key: value for key, value in binding.items() if not EXTENSION.match(key)}

    for name, channel in document["channels"].items():
        binding = amqp(channel)
        assert set(binding) <= AMQP_CHANNEL_FIELDS, name
        if binding.get("is") == "routingKey":
            assert set(binding["exchange"]) <= AMQP_EXCHANGE_FIELDS, name
            assert binding["exchange"]["type"] in AMQP_EXCHANGE_TYPES, name
        elif binding:
            assert binding["is"] == "queue", name
            assert set(binding["queue"]) <= AMQP_QUEUE_FIELDS, name
    for name, operation in document["operations"].items():
        binding = amqp(operation)
        assert set(binding) <= AMQP_OPERATION_FIELDS, name
        assert binding.get("deliveryMode", 1) in {1, 2}, name
    for name, message in document["components"]["messages"].items():
        assert set(amqp(message)) <= AMQP_MESSAGE_FIELDS, name


def test_schemas_are_asyncapi_schema_objects(document: dict[str, Any]) -> None:
    """AsyncAPI's `discriminator` is a property name, required and declared where it is used."""
    for path, node in walk(document["components"]["schemas"]):
        if isinstance(node, dict) and "discriminator" in node and "properties" in node:
            tag = node["discriminator"]
            assert isinstance(tag, str), f"{path}: discriminator must be a property name"
            assert tag in node["required"] and tag in node["properties"], path


def test_validates_against_the_official_json_schema(document: dict[str, Any]) -> None:
    location = os.environ.get("ASYNCAPI_SCHEMA")
    if not location:
        pytest.skip("set ASYNCAPI_SCHEMA to @asyncapi/specs' schemas/3.0.0-without-$id.json")
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(Path(location).read_text(encoding="utf-8"))
    errors = sorted(
        jsonschema.Draft7Validator(schema).iter_errors(json.loads(json.dumps(document))),
        key=lambda error: list(error.absolute_path),
    )
    assert not errors, "\n".join(
        f"{'/'.join(map(str, error.absolute_path))}: {error.message[:200]}" for error in errors
    )


# --- agreement with the services ---------------------------------------------------------------


def _operations(document: dict[str, Any], action: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, operation in document["operations"].items():
        if operation["action"] == action:
            yield name, resolve(document, operation["channel"]["$ref"])


def _channels(
    document: dict[str, Any], action: str, bound_to: str
) -> dict[tuple[str, str], dict[str, Any]]:
    """The channels of the `action` operations whose AMQP binding is to a queue or to an
    exchange (`bound_to`), by that queue's or exchange's name and the channel's address."""
    binding_is = {"queue": "queue", "exchange": "routingKey"}[bound_to]
    return {
        (binding[bound_to]["name"], channel["address"]): channel
        for _, channel in _operations(document, action)
        if (binding := channel["bindings"]["amqp"])["is"] == binding_is
    }


def _payload(document: dict[str, Any], channel: dict[str, Any]) -> dict[str, Any]:
    (message,) = channel["messages"].values()
    return resolve(document, resolve(document, message["$ref"])["payload"]["$ref"])


def test_every_subscription_is_received_with_its_contract(
    document: dict[str, Any], brokers: list[RabbitBroker]
) -> None:
    received = _channels(document, "receive", bound_to="queue")
    subscribers = [subscriber for broker in brokers for subscriber in broker.subscribers]
    # The queues of the web shop's events, the erasures, the questions, and everyone's commands.
    assert len(subscribers) >= 4 * 3
    for subscriber in subscribers:
        queue = subscriber.queue.name
        channel = received.get((queue, subscriber.queue.routing_key))
        assert channel is not None, f"queue {queue} is not in the document: run `make asyncapi`"
        # The handler's contract, not `Any`: a handler that takes an untyped message fails here.
        assert _payload(document, channel).get("properties") or "oneOf" in _payload(
            document, channel
        ), f"queue {queue}: its handler does not say what it takes"
        assert channel["description"], f"queue {queue}: its handler has no docstring"


def test_every_publication_is_sent_with_its_contract(
    document: dict[str, Any], brokers: list[RabbitBroker]
) -> None:
    sent = _channels(document, "send", bound_to="exchange")
    publishers = [publisher for broker in brokers for publisher in broker.publishers]
    routes = {(p.exchange.name, p.routing_key) for p in publishers}
    # consent.changed, disclosures and erasure notices, the erasure's requests and question,
    # and the participants' reports.
    assert {(topology.REGISTER_EVENTS_EXCHANGE, topology.CONSENT_CHANGED)} < routes
    for exchange, routing_key in routes:
        channel = sent.get((exchange, routing_key))
        assert channel is not None, f"{exchange} {routing_key} is not in the document"
        assert _payload(document, channel).get("properties"), f"{exchange} {routing_key}"


def test_the_web_shop_sends_every_event_a_service_takes_from_it(
    document: dict[str, Any], brokers: list[RabbitBroker]
) -> None:
    sent = {
        channel["address"]
        for _, channel in _operations(document, "send")
        if channel["bindings"]["amqp"].get("exchange", {}).get("name") == topology.WEBSHOP_EXCHANGE
    }
    consumed = {
        subscriber.queue.routing_key
        for broker in brokers
        for subscriber in broker.subscribers
        if subscriber.exchange.name == topology.WEBSHOP_EXCHANGE
    }
    assert sent == consumed
    assert topology.ORDER_PLACED in sent


def test_a_provider_receives_disclosures_and_erasure_notices(document: dict[str, Any]) -> None:
    (queue,) = (
        channel
        for _, channel in _operations(document, "receive")
        if channel["bindings"]["amqp"].get("queue", {}).get("name")
        == topology.provider_queue_name("{provider_id}")
    )
    names = {resolve(document, m["$ref"])["name"] for m in queue["messages"].values()}
    assert names == {"Disclosure", "ErasureNotice"}
