"""Settings of the disclosure service: the common ones, its name, its health port, and what it
needs to give each provider its own RabbitMQ user."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr
from yarl import URL

from shared.settings import DEV_RABBITMQ_PASSWORD, ServiceSettings


class DisclosureSettings(ServiceSettings):
    service_name: ClassVar[str] = "disclosure"
    health_port: int = 8083
    rabbitmq_management_url: str = Field(
        default="http://localhost:15672",
        description="RabbitMQ's management HTTP API, where provider users are created.",
    )
    rabbitmq_management_user: str | None = Field(
        default=None,
        description=(
            "An administrator of the management API; defaults to RABBITMQ_URL's user, which "
            "only the development setup (guest) makes an administrator."
        ),
    )
    rabbitmq_management_password: SecretStr | None = Field(
        default=None, description="Its password; defaults to RABBITMQ_URL's password."
    )
    provider_amqp_url: str | None = Field(
        default=None,
        pattern=r"^amqps?://",
        description=(
            "Where providers connect (`amqp[s]://HOST:PORT/VHOST`, no credentials); defaults "
            "to RABBITMQ_URL's host, port and virtual host."
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
        if self.rabbitmq_management_user is None or password is None:
            problems.append(
                "RABBITMQ_MANAGEMENT_USER and RABBITMQ_MANAGEMENT_PASSWORD must name an "
                "administrator (the service's own RabbitMQ user is not one)"
            )
        elif password.get_secret_value() == DEV_RABBITMQ_PASSWORD:
            problems.append("RABBITMQ_MANAGEMENT_PASSWORD must not be guest's")
        return problems

    @property
    def vhost(self) -> str:
        """The register's virtual host, read from RABBITMQ_URL as the AMQP client reads it."""
        path = URL(self.rabbitmq_url).path
        return "/" if path in ("", "/") else path[1:]

    @property
    def management_credentials(self) -> tuple[str, str]:
        url = URL(self.rabbitmq_url)
        password = self.rabbitmq_management_password
        return (
            self.rabbitmq_management_user or url.user or "guest",
            password.get_secret_value() if password else url.password or "guest",
        )

    @property
    def provider_url(self) -> str:
        if self.provider_amqp_url:
            return self.provider_amqp_url
        return str(URL(self.rabbitmq_url).with_user(None))
