"""Settings of the disclosure service: the common ones, its name and its health port."""

from __future__ import annotations

from typing import ClassVar

from shared.settings import ServiceSettings


class DisclosureSettings(ServiceSettings):
    service_name: ClassVar[str] = "disclosure"
    health_port: int = 8083
