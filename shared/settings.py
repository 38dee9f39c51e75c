"""Settings every service reads from the environment.

Each service subclasses `ServiceSettings` in its own `settings.py` to name itself and pick its
health port; everything else is common. Every field here is documented in README's table.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from yarl import URL

# Defaults so that `make dev` works out of the box; production refuses to start with them.
DEV_IDENTITY_HASH_KEY = "dev-only-identity-hash-key-not-secret"
DEV_RABBITMQ_PASSWORD = "guest"
# A key anyone could guess in an afternoon would let them test guessed emails against every
# stored subject hash: production wants at least as many bytes as the HMAC's output.
IDENTITY_KEY_MIN_BYTES = 32


class ServiceSettings(BaseSettings):
    # A refusal at start names the setting, never its value: the inputs are secrets.
    model_config = SettingsConfigDict(
        env_prefix="", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    # Each service's subclass names itself; not read from the environment.
    service_name: ClassVar[str] = ""

    environment: Literal["dev", "production"] = Field(
        default="dev",
        validation_alias="REGISTER_ENV",
        description=(
            "`production` refuses to start with any development default of a secret: the "
            "identity key, RabbitMQ's guest login."
        ),
    )
    rabbitmq_url: str = Field(
        default="amqp://guest:guest@localhost:5672/",
        description="AMQP URL of the broker, including credentials and virtual host.",
    )
    rabbitmq_user_prefix: str = Field(
        default="",
        description=(
            "What `rekisteri rabbitmq provision --user-prefix` put before every user name: the "
            "services tell staff, the web shop and each other by their users (`<prefix>orders`, "
            "`<prefix>webshop`, `<prefix>staff-<name>`)."
        ),
    )
    mongodb_url: str | None = Field(
        default=None,
        description=(
            "A real MongoDB (`mongodb://...`; TLS options such as `tls=true&tlsCAFile=...` go in "
            "the URL). Unset: a SQLite file per service under DATA_DIR; `memory://`: SQLite kept "
            "purely in memory."
        ),
    )
    mongodb_database: str | None = Field(
        default=None, description="Database name; defaults to the service's name."
    )
    mongodb_write_concern: int | Literal["majority"] = Field(
        default=1,
        description=(
            "MongoDB write concern `w` (always with `j=true`, journaled): `majority` on a "
            "replica set, so an acknowledged write survives the loss of the primary."
        ),
    )
    data_dir: str = Field(
        default=".data", description="Where each service keeps its SQLite file without MongoDB."
    )
    identity_hash_key: SecretStr = Field(
        default=SecretStr(DEV_IDENTITY_HASH_KEY),
        description="Secret key of the keyed hash that identifies a person across services.",
    )
    prefetch_count: int = Field(
        default=64, ge=1, le=10_000, description="Unacknowledged messages a consumer may hold."
    )
    max_message_bytes: int = Field(
        default=256 * 1024, ge=1024, description="Larger incoming messages are dead-lettered."
    )
    health_host: str = Field(default="127.0.0.1", description="Interface of the health server.")
    health_port: int = Field(default=8080, description="Port of /health and /ready.")
    log_level: str = Field(default="INFO", description="Python log level name.")

    @field_validator("mongodb_url", "mongodb_database", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `MONGODB_URL=` in a shell or an .env file means "not set", not "a server named ''".
        return None if value == "" else value

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_production(self) -> ServiceSettings:
        if self.environment == "production" and (problems := self.dev_secrets()):
            raise ValueError("REGISTER_ENV=production: " + "; ".join(problems))
        return self

    def dev_secrets(self) -> list[str]:
        """What production refuses among the secrets: a development default, an identity key
        too short to be secret (a subclass adds its own)."""
        problems = []
        identity_key = self.identity_hash_key.get_secret_value()
        if identity_key == DEV_IDENTITY_HASH_KEY:
            problems.append("IDENTITY_HASH_KEY must be set to a secret value")
        elif len(identity_key.encode()) < IDENTITY_KEY_MIN_BYTES:
            problems.append(f"IDENTITY_HASH_KEY must be at least {IDENTITY_KEY_MIN_BYTES} bytes")
        if URL(self.rabbitmq_url).password in (None, "", DEV_RABBITMQ_PASSWORD):
            problems.append("RABBITMQ_URL must log in as the service's own user, not guest")
        return problems

    @property
    def database_name(self) -> str:
        return self.mongodb_database or self.service_name
