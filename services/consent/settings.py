"""Settings of the consent service: the common ones, its name and its health port."""

from __future__ import annotations

from typing import ClassVar

from shared.settings import ServiceSettings


class ConsentSettings(ServiceSettings):
    service_name: ClassVar[str] = "consent"
    health_port: int = 8082
