"""What one service is, described once: its settings class and how it is assembled.

Its name (`service_name`) and default health port come from the settings class; it runs as
`python -m services.<name>`. Each service's `app.py` holds its `DEFINITION`; `services.definition`
finds one by name, and every tool and test takes names, settings, ports and the assembly from
there. What every service is assembled from (`Parts`) and what its own assembly gives back
(`Assembly`) are here too; shared/runtime.py does the wiring common to all four.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from faststream.rabbit import RabbitBroker, RabbitRouter

from shared.database import Database
from shared.dead_letters import QueueInspector
from shared.erasure.participation import Participation
from shared.erasure.records import ErasureRecords
from shared.identity import SubjectHasher
from shared.retention_policy import RetentionPolicy
from shared.retention_sweep import SweepPart
from shared.settings import ServiceSettings

Stop = Callable[[], Awaitable[None]]
StartupHooks = Sequence[Callable[[], Awaitable[Stop | None]]]
"""What a service needs done once the broker is connected (declaring queues it owns, starting
work it repeats in the background). A hook that starts something returns how to stop it: that
is called when the service stops, before the broker is closed."""
SettingsT = TypeVar("SettingsT", bound=ServiceSettings)
# Generic in the settings class, so a service's `assemble` may take its own subclass.
Assemble = Callable[[SettingsT, Database, RabbitBroker], Awaitable[StartupHooks]]


@dataclass(frozen=True)
class Parts(Generic[SettingsT]):
    """What every service is built from, made the same way for all four before its own part."""

    settings: SettingsT
    database: Database
    broker: RabbitBroker
    hasher: SubjectHasher
    inspector: QueueInspector
    """The one view of the queues the service answers for (shared/runtime.py)."""
    policy: RetentionPolicy

    def participation(self, records: ErasureRecords) -> Participation:
        """The service's part in erasures, for one that holds people's data."""
        return Participation.of(
            self.settings.service_name, records, self.inspector, self.hasher, self.broker
        )


@dataclass(frozen=True)
class Assembly:
    """What a service's own assembly gives back for the common wiring to finish."""

    router: RabbitRouter
    """Its handlers."""
    retained: Sequence[SweepPart]
    """Its own parts of the daily retention sweep."""
    erasure_records: ErasureRecords | None = None
    """A participant's records of the erasures it reported, swept as well."""
    hooks: StartupHooks = ()
    """Its own startup hooks, run before the retention sweep's."""


@dataclass(frozen=True)
class ServiceDefinition(Generic[SettingsT]):
    """One service: its settings class (its name, its health port) and its `assemble`."""

    settings_class: type[SettingsT]
    assemble: Assemble[SettingsT]

    @property
    def name(self) -> str:
        return self.settings_class.service_name

    @property
    def module(self) -> str:
        """What `python -m` runs."""
        return f"services.{self.name}"

    @property
    def default_health_port(self) -> int:
        return int(self.settings_class.model_fields["health_port"].default)

    def command(self, python: str = sys.executable) -> list[str]:
        """The service's process, as ops, `make dev` and the end-to-end tests start it."""
        return [python, "-m", self.module]
