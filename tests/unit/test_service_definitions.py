"""Each service is described once (shared/service_definition.py): the register's contract's
list of services and the definitions agree, and each definition runs its own package."""

from __future__ import annotations

import importlib
import sys

import pytest

import services
from shared import topology


def test_there_is_a_definition_for_every_service_of_the_contract_and_no_other() -> None:
    assert [d.name for d in services.definitions()] == list(topology.SERVICES)


@pytest.mark.parametrize("name", topology.SERVICES)
def test_a_definition_is_named_as_its_package_and_runs_it(name: str) -> None:
    definition = services.definition(name)
    assert definition.name == name
    assert definition.module == f"services.{name}"
    assert definition.command() == [sys.executable, "-m", f"services.{name}"]
    # Its settings class and assembly are the package's own, not another service's.
    assert definition.settings_class.__module__ == f"services.{name}.settings"
    assert definition.assemble is importlib.import_module(f"services.{name}.app").assemble
    # `python -m services.<name>` runs this very definition.
    main = importlib.import_module(f"services.{name}.__main__")
    assert main.DEFINITION is definition


def test_each_service_has_its_own_health_port() -> None:
    ports = [d.default_health_port for d in services.definitions()]
    assert ports == [8081, 8082, 8083, 8084]


def test_an_unknown_service_is_refused_by_name() -> None:
    with pytest.raises(LookupError, match="billing"):
        services.definition("billing")
