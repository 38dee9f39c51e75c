"""No mass disclosure, by construction: the only code that can put a message on `disclosures`
is `ProviderQueues.send`, which takes one order's disclosure for one provider, and
`ProviderQueues.send_erasure_notice`, which takes one erasure notice (no personal data) for one
provider.

The source of the running register (services/, shared/, rekisteri/) is read as syntax trees, so a
new module that names the exchange or a provider queue, or spells out their names, fails here
before it can ship. The broker enforces the same: every user but the disclosure service's is
refused writes to `disclosures` (shared/permissions.py, proven in tests/e2e/test_permissions.py).
"""

from __future__ import annotations

import ast
import inspect
import typing
from pathlib import Path

from services.disclosure.publisher import ProviderQueues
from shared import topology
from shared.contracts.disclosures import Disclosure, ErasureNotice

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_PACKAGES = ("services", "shared", "rekisteri")
PUBLISHER = Path("services/disclosure/publisher.py")
# Where the names are defined: the names alone, and the topology built from them.
TOPOLOGY = {Path("shared/topology.py"), Path("shared/topology_names.py")}

# What reaches a provider's queue: the exchange, or the queue itself through the default
# exchange; by the names topology gives them, or spelled out as strings (shown quoted).
TOPOLOGY_NAMES = {
    "DISCLOSURES_EXCHANGE",
    "disclosures_exchange",
    "PROVIDER_QUEUE_PREFIX",
    "provider_queue",
    "provider_queue_name",
}
SPELLED_OUT = {topology.DISCLOSURES_EXCHANGE, topology.PROVIDER_QUEUE_PREFIX}
# Who may use them, and why. Anything else that needs them is a design change: discuss it.
ALLOWED = {
    PUBLISHER: TOPOLOGY_NAMES,
    # The permission table: the disclosure service's right to write to the exchange and declare
    # provider queues, and each provider's right to read its own queue.
    Path("shared/permissions.py"): {"disclosures_exchange", "provider_queue_name"},
    # The MongoDB collection of the disclosure log bears the same name as the exchange.
    Path("services/disclosure/store/mongo.py"): {repr(topology.DISCLOSURES_EXCHANGE)},
    # The command group `rekisteri disclosures` bears the same name too.
    Path("rekisteri/cli.py"): {repr(topology.DISCLOSURES_EXCHANGE)},
}


def runtime_modules() -> list[Path]:
    return sorted(
        path.relative_to(ROOT)
        for package in RUNTIME_PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if path.relative_to(ROOT) not in TOPOLOGY
    )


def names_used(tree: ast.AST) -> set[str]:
    """Every identifier, attribute and imported name in the tree."""
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            used.add(node.id)
        elif isinstance(node, ast.Attribute):
            used.add(node.attr)
        elif isinstance(node, ast.alias):
            used.add(node.name.rsplit(".", 1)[-1])
    return used


def references(tree: ast.AST) -> set[str]:
    """The topology names a module uses, and the strings that spell them out (quoted)."""
    spelled = {
        repr(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in SPELLED_OUT
    }
    return (names_used(tree) & TOPOLOGY_NAMES) | spelled


def test_only_the_publisher_can_address_the_disclosures_exchange_or_a_provider_queue() -> None:
    modules = runtime_modules()
    assert PUBLISHER in modules
    offenders = {}
    for module in modules:
        tree = ast.parse((ROOT / module).read_text(), filename=str(module))
        found = references(tree) - ALLOWED.get(module, set())
        if found:
            offenders[str(module)] = sorted(found)
    assert offenders == {}


def test_the_publisher_sends_exactly_one_disclosure_at_a_time() -> None:
    parameters = list(inspect.signature(ProviderQueues.send).parameters.values())
    assert [p.name for p in parameters] == ["self", "disclosure"]
    assert parameters[1].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert typing.get_type_hints(ProviderQueues.send)["disclosure"] is Disclosure


def test_the_publisher_sends_exactly_one_erasure_notice_to_one_provider_at_a_time() -> None:
    parameters = list(inspect.signature(ProviderQueues.send_erasure_notice).parameters.values())
    assert [p.name for p in parameters] == ["self", "provider_id", "notice"]
    hints = typing.get_type_hints(ProviderQueues.send_erasure_notice)
    assert (hints["provider_id"], hints["notice"]) == (str, ErasureNotice)
    # Orders and roles on them: no personal data.
    assert set(ErasureNotice.model_fields) == {
        "type",
        "notice_id",
        "order_ids",
        "occurred_at",
        "roles",
    }


def test_the_publisher_publishes_only_in_send() -> None:
    tree = ast.parse((ROOT / PUBLISHER).read_text())
    publishing = {
        function.name
        for function in ast.walk(tree)
        if isinstance(function, ast.AsyncFunctionDef | ast.FunctionDef)
        for call in ast.walk(function)
        if isinstance(call, ast.Call) and "publish" in names_used(call.func)
    }
    assert publishing == {"send", "send_erasure_notice"}
