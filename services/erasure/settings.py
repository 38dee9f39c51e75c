"""Settings of the erasure service: the common ones, its name, its health port, and the timing
of erasure requests (ISO 8601 durations in the environment: `P30D`, `PT1H`, `PT0.5S`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from pydantic import Field

from services.erasure.domain import Timing
from shared.settings import ServiceSettings


def duration(default: timedelta, description: str) -> Any:
    """A setting that is a positive length of time."""
    return Field(default=default, gt=timedelta(0), description=description)


class ErasureSettings(ServiceSettings):
    service_name: ClassVar[str] = "erasure"
    health_port: int = 8084
    erasure_deadline: timedelta = duration(
        timedelta(days=30),
        "How long after its receipt an erasure must be complete (GDPR Art. 12(3)).",
    )
    erasure_retry_first: timedelta = duration(
        timedelta(minutes=1),
        "How long to wait for a service's report before asking it again.",
    )
    erasure_retry_max: timedelta = duration(
        timedelta(hours=1),
        "The longest wait between two requests to a silent service (the wait doubles).",
    )
    erasure_stuck_after: timedelta = duration(
        timedelta(hours=4),
        "A request whose services have not all reported this long after it started is stuck.",
    )
    erasure_check_interval: timedelta = duration(
        timedelta(seconds=10),
        "How often the service looks for requests due for another attempt.",
    )

    @property
    def timing(self) -> Timing:
        return Timing(
            deadline=self.erasure_deadline,
            retry_first=self.erasure_retry_first,
            retry_max=self.erasure_retry_max,
            stuck_after=self.erasure_stuck_after,
        )
