"""docs/asyncapi.yaml is what `tools.asyncapi` generates, and a sound AsyncAPI 3.0 document.

The structural checks stand in for the official AsyncAPI JSON Schema, which no PyPI package
ships. To validate against it as well, point ASYNCAPI_SCHEMA at `3.0.0-without-$id.json` from
the npm package `@asyncapi/specs` and have `jsonschema` installed.
"""

from __future__ import annotations

import difflib
import importlib
import json
import os
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from faststream.rabbit import RabbitBroker

import services
from shared.runtime import runtime_router
from shared.settings import ServiceSettings
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
        for key, message in channel["messages"].items():
            ref = message["$ref"]
            assert ref == f"#/components/messages/{key}", f"{name}: {ref}"
            assert key in components


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

    used_messages = {ref.rsplit("/", 1)[1] for _, ref in refs(document["channels"])}
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
        if binding:
            assert binding["is"] == "routingKey", name
            assert set(binding["exchange"]) <= AMQP_EXCHANGE_FIELDS, name
            assert binding["exchange"]["type"] in AMQP_EXCHANGE_TYPES, name
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


def _service_subscribers() -> Iterator[tuple[str, list[Any]]]:
    """What each service consumes: its own router's subscribers and those of the runtime router
    every service includes, built with stand-ins (handlers only keep what they are given)."""
    for module in pkgutil.iter_modules(services.__path__):
        settings_module = importlib.import_module(f"services.{module.name}.settings")
        handlers = importlib.import_module(f"services.{module.name}.handlers")
        (settings,) = (
            value
            for value in vars(settings_module).values()
            if isinstance(value, type)
            and issubclass(value, ServiceSettings)
            and value.__module__ == settings_module.__name__
        )
        own = handlers.build_router(None, settings())
        common = runtime_router(settings(), RabbitBroker())
        yield settings.service_name, [*own.subscribers, *common.subscribers]


def test_receive_operations_are_what_the_services_consume(document: dict[str, Any]) -> None:
    consumers = dict(_service_subscribers())
    assert consumers, "no service found"
    for service, subscribers in consumers.items():
        consumed = {
            (
                subscriber.queue.name,
                subscriber.exchange.name,
                subscriber.queue.routing_key,
                json.dumps(subscriber.queue.arguments, sort_keys=True),
            )
            for subscriber in subscribers
        }
        documented = set()
        for operation in document["operations"].values():
            if operation["action"] != "receive" or {"name": service} not in operation["tags"]:
                continue
            channel = resolve(document, operation["channel"]["$ref"])
            queue = operation["x-amqp-queue"]
            documented.add(
                (
                    queue["name"],
                    channel["bindings"]["amqp"]["exchange"]["name"],
                    # A channel addressed per service names it with its `service` parameter.
                    channel["address"].replace("{service}", service),
                    json.dumps(queue["arguments"], sort_keys=True),
                )
            )
        assert documented == consumed, (
            f"the {service} service consumes {sorted(consumed)} but the document says "
            f"{sorted(documented)}: update ROUTES in tools/asyncapi.py and run `make asyncapi`"
        )
