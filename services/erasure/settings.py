"""Settings of the erasure service: the common ones, its name and its health port."""

from __future__ import annotations

from typing import ClassVar

from shared.settings import ServiceSettings


class ErasureSettings(ServiceSettings):
    service_name: ClassVar[str] = "erasure"
    health_port: int = 8084
