"""Settings of the erasure service: the common ones, its name, its health port, and the timing
of erasure requests (ISO 8601 durations in the environment: `P30D`, `PT1H`, `PT0.5S`)."""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from pydantic import Field

from shared.settings import ServiceSettings


class ErasureSettings(ServiceSettings):
    service_name: ClassVar[str] = "erasure"
    health_port: int = 8084
    erasure_deadline: timedelta = Field(
        default=timedelta(days=30),
        gt=timedelta(0),
        description="How long after its receipt an erasure must be complete (GDPR Art. 12(3)).",
    )
    erasure_retry_first: timedelta = Field(
        default=timedelta(minutes=1),
        gt=timedelta(0),
        description="How long to wait for a service's report before asking it again.",
    )
    erasure_retry_max: timedelta = Field(
        default=timedelta(hours=1),
        gt=timedelta(0),
        description="The longest wait between two requests to a silent service (the wait doubles).",
    )
    erasure_stuck_after: timedelta = Field(
        default=timedelta(hours=4),
        gt=timedelta(0),
        description="A request whose services have not all reported this long after it started is stuck.",
    )
    erasure_check_interval: timedelta = Field(
        default=timedelta(seconds=10),
        gt=timedelta(0),
        description="How often the service looks for requests due for another attempt.",
    )
