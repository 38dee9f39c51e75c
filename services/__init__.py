"""The register's four services; each runs as its own process: `python -m services.<name>`.

Each is described once, by the `DEFINITION` in its `app.py` (shared/service_definition.py);
`definition(name)` finds it, importing only that service.
"""

from __future__ import annotations

import importlib
from typing import Any

from shared import topology
from shared.service_definition import ServiceDefinition

DEFINITION_MODULE = "app"
"""The module of each service's package that holds its `DEFINITION`."""


def definition(name: str) -> ServiceDefinition[Any]:
    """The service called `name` (one of `shared.topology.SERVICES`)."""
    if name not in topology.SERVICES:
        raise LookupError(f"no service {name!r}; the services are {', '.join(topology.SERVICES)}")
    module = importlib.import_module(f"{__name__}.{name}.{DEFINITION_MODULE}")
    found = module.DEFINITION
    assert isinstance(found, ServiceDefinition)
    return found


def definitions() -> list[ServiceDefinition[Any]]:
    """Every service's, in `shared.topology.SERVICES` order."""
    return [definition(name) for name in topology.SERVICES]
