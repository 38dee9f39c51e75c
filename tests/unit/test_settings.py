"""Production refuses every development default of a secret; development runs without any."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.disclosure.settings import DisclosureSettings
from services.orders.settings import OrdersSettings
from shared.identity import key_fingerprint

SERVICE_URL = "amqp://orders:fake-password@rabbitmq:5672/register"
REAL_KEY = "unit-test-identity-key-of-at-least-32-bytes"
PRODUCTION = {"REGISTER_ENV": "production", "identity_hash_key": REAL_KEY}


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
    assert DisclosureSettings().login == ("guest", "guest")


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


@pytest.mark.parametrize("key", ["x", "a" * 31, "ä" * 15 + "a"])  # the last: 31 bytes in UTF-8
def test_production_refuses_an_identity_key_shorter_than_32_bytes(key: str) -> None:
    with pytest.raises(ValidationError) as refused:
        OrdersSettings(**{**PRODUCTION, "rabbitmq_url": SERVICE_URL, "identity_hash_key": key})
    assert "IDENTITY_HASH_KEY must be at least 32 bytes" in str(refused.value)
    assert key not in str(refused.value), "the refusal never shows the key"


@pytest.mark.parametrize("key", ["a" * 32, "ä" * 16])
def test_production_takes_an_identity_key_of_32_bytes(key: str) -> None:
    settings = OrdersSettings(
        **{**PRODUCTION, "rabbitmq_url": SERVICE_URL, "identity_hash_key": key}
    )
    assert settings.identity_hash_key.get_secret_value() == key


def test_development_takes_any_identity_key() -> None:
    assert OrdersSettings(identity_hash_key="x").identity_hash_key.get_secret_value() == "x"


def test_the_fingerprint_tells_keys_apart_without_showing_them() -> None:
    fingerprint = key_fingerprint(REAL_KEY)
    assert fingerprint == key_fingerprint(REAL_KEY)
    assert fingerprint != key_fingerprint(REAL_KEY[:-1] + "N")
    assert len(fingerprint) == 16 and int(fingerprint, 16) >= 0
    assert not any(REAL_KEY[i : i + 4] in fingerprint for i in range(len(REAL_KEY) - 3))


def test_production_starts_with_real_secrets() -> None:
    settings = OrdersSettings(**PRODUCTION, rabbitmq_url=SERVICE_URL)
    assert settings.environment == "production"


def test_the_disclosure_service_holds_no_administrators_credentials_in_production() -> None:
    url = "amqp://disclosure:fake-password@rabbitmq:5672/register"
    assert DisclosureSettings(**PRODUCTION, rabbitmq_url=url).environment == "production"
    for held in (
        {"rabbitmq_management_user": "admin"},
        {"rabbitmq_management_password": "s3cret"},
    ):
        with pytest.raises(ValidationError) as refused:
            DisclosureSettings(**PRODUCTION, rabbitmq_url=url, **held)
        message = str(refused.value)
        assert (
            "RABBITMQ_MANAGEMENT_USER and RABBITMQ_MANAGEMENT_PASSWORD must not be set" in message
        )
        assert "s3cret" not in message
    # Development ignores them: `make dev` runs as guest, an administrator anyway.
    development = DisclosureSettings(rabbitmq_url=url, rabbitmq_management_user="admin")
    assert development.login == ("disclosure", "fake-password")
