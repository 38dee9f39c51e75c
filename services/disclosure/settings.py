"""Settings of the disclosure service: the common ones, its name, its health port, and how it
names providers' RabbitMQ users and tells them where to connect.

It holds no administrator's credentials: `rekisteri providers credentials` makes each
provider's user, as the administrator, on staff's machine or in a one-shot container. In
production it refuses to start with any: set for it (RABBITMQ_MANAGEMENT_USER,
RABBITMQ_MANAGEMENT_PASSWORD), or as the login of RABBITMQ_URL (checked at start, services/
disclosure/app.py).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr
from yarl import URL

from shared.settings import ServiceSettings


class DisclosureSettings(ServiceSettings):
    service_name: ClassVar[str] = "disclosure"
    health_port: int = 8083
    rabbitmq_management_url: str = Field(
        default="http://localhost:15672",
        description=(
            "RabbitMQ's management HTTP API, asked at start in production whether RABBITMQ_URL's "
            "user is an administrator (the service then refuses to start)."
        ),
    )
    rabbitmq_management_user: str | None = Field(
        default=None,
        description=(
            "Not used: the service makes no users. Production refuses to start while it is set."
        ),
    )
    rabbitmq_management_password: SecretStr | None = Field(
        default=None,
        description="Not used, as RABBITMQ_MANAGEMENT_USER; production refuses it too.",
    )
    provider_amqp_url: str | None = Field(
        default=None,
        pattern=r"^amqps?://",
        description=(
            "Where providers connect (`amqps://HOST:PORT/VHOST`, no credentials), printed by "
            "`rekisteri providers credentials`; defaults to RABBITMQ_URL's host, port and "
            "virtual host."
        ),
    )
    provider_user_prefix: str = Field(
        default="provider-",
        min_length=1,
        description="A provider's RabbitMQ user is this prefix followed by its id.",
    )

    def dev_secrets(self) -> list[str]:
        problems = super().dev_secrets()
        password = self.rabbitmq_management_password
        if self.rabbitmq_management_user or (password and password.get_secret_value()):
            problems.append(
                "RABBITMQ_MANAGEMENT_USER and RABBITMQ_MANAGEMENT_PASSWORD must not be set: the "
                "disclosure service holds no administrator's credentials (`rekisteri providers "
                "credentials` makes providers' users)"
            )
        return problems

    @property
    def login(self) -> tuple[str, str]:
        """RABBITMQ_URL's user and password, as the broker sees them."""
        url = URL(self.rabbitmq_url)
        return url.user or "guest", url.password or "guest"

    @property
    def provider_url(self) -> str:
        if self.provider_amqp_url:
            return self.provider_amqp_url
        # The service's own address, without its login or client options (a CA file's path).
        return str(URL(self.rabbitmq_url).with_user(None).with_query(None))
