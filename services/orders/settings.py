"""Settings of the orders service: the common ones, its name and its health port."""

from __future__ import annotations

from typing import ClassVar

from shared.settings import ServiceSettings


class OrdersSettings(ServiceSettings):
    service_name: ClassVar[str] = "orders"
    health_port: int = 8081
