"""Production refuses every development default of a secret; development runs without any."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.disclosure.settings import DisclosureSettings
from services.orders.settings import OrdersSettings

SERVICE_URL = "amqp://orders:fake-password@rabbitmq:5672/register"
PRODUCTION = {"REGISTER_ENV": "production", "identity_hash_key": "a-real-key"}


@pytest.fixture(autouse=True)
def no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in (
        "REGISTER_ENV",
        "IDENTITY_HASH_KEY",
        "RABBITMQ_URL",
        "RABBITMQ_MANAGEMENT_USER",
        "RABBITMQ_MANAGEMENT_PASSWORD",
    ):
        monkeypatch.delenv(variable, raising=False)


def test_development_runs_on_the_defaults() -> None:
    assert OrdersSettings().environment == "dev"
    assert DisclosureSettings().management_credentials == ("guest", "guest")


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"identity_hash_key": "dev-only-identity-hash-key-not-secret"}, "IDENTITY_HASH_KEY"),
        ({"rabbitmq_url": "amqp://guest:guest@rabbitmq:5672/register"}, "RABBITMQ_URL"),
        ({"rabbitmq_url": "amqp://rabbitmq:5672/register"}, "RABBITMQ_URL"),
    ],
)
def test_production_refuses_a_development_secret(changes: dict[str, str], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        OrdersSettings(**{**PRODUCTION, "rabbitmq_url": SERVICE_URL, **changes})


def test_production_starts_with_real_secrets() -> None:
    settings = OrdersSettings(**PRODUCTION, rabbitmq_url=SERVICE_URL)
    assert settings.environment == "production"


def test_the_disclosure_service_needs_an_administrator_of_its_own_in_production() -> None:
    url = "amqp://disclosure:fake-password@rabbitmq:5672/register"
    with pytest.raises(ValidationError, match="RABBITMQ_MANAGEMENT_USER"):
        DisclosureSettings(**PRODUCTION, rabbitmq_url=url)
    with pytest.raises(ValidationError, match="RABBITMQ_MANAGEMENT_PASSWORD must not be guest"):
        DisclosureSettings(
            **PRODUCTION,
            rabbitmq_url=url,
            rabbitmq_management_user="admin",
            rabbitmq_management_password="guest",
        )
    settings = DisclosureSettings(
        **PRODUCTION,
        rabbitmq_url=url,
        rabbitmq_management_user="admin",
        rabbitmq_management_password="fake-password",
    )
    assert settings.management_credentials == ("admin", "fake-password")
