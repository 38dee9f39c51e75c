"""docker-compose.yml agrees with the code: commands, settings, health checks, .env.example.

No Docker is needed: the file is read as YAML (anchors and `<<` merges resolved by PyYAML) and
checked against the services' packages and settings classes, which are the source of truth.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import secrets
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from pydantic import AliasChoices, AliasPath
from pydantic_settings import BaseSettings

from shared.retention_policy import RetentionSettings

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run from a checkout whether or not the project is installed
    sys.path.insert(0, str(ROOT))

COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
MONGODB_INIT_SCRIPT = ROOT / "deploy" / "mongodb" / "create-users.js"
RABBITMQ_CONF = ROOT / "deploy" / "rabbitmq" / "rabbitmq.conf"
TLS_DIR = ROOT / "deploy" / "tls"
AMQP_PORT, AMQPS_PORT, MANAGEMENT_PORT = "5672", "5671", "15672"
INFRASTRUCTURE = ("rabbitmq", "mongodb")
PROVISION = "provision"
"""The one-shot container that gives every party its RabbitMQ user before the services start."""

# `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?error}`, `${NAME:+alt}`..., `$NAME`.
BRACED = re.compile(r"\$\{(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}")
PLAIN = re.compile(r"\$(?P<name>[A-Za-z_]\w*)")
ANY_VARIABLE = re.compile(r"\$\{?(?P<name>[A-Za-z_]\w*)")
DOCUMENTED = re.compile(
    r"^[ \t]*(?P<commented>#[ \t]*)?(?P<name>[A-Za-z_]\w*)=(?P<value>.*)$", re.M
)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict)
    assert isinstance(document.get("services"), dict)
    return document


def service_packages() -> list[str]:
    """The services the code has: each package under services/ with a settings module."""
    return sorted(path.parent.name for path in (ROOT / "services").glob("*/settings.py"))


def settings_class(service: str) -> type[BaseSettings]:
    module = importlib.import_module(f"services.{service}.settings")
    cls = getattr(module, f"{service.capitalize()}Settings")
    assert issubclass(cls, BaseSettings)
    return cls


def setting_names(cls: type[BaseSettings]) -> set[str]:
    """The environment variables the settings class reads (upper-cased unless case-sensitive)."""
    prefix = cls.model_config.get("env_prefix") or ""
    names: set[str] = set()
    for field_name, field in cls.model_fields.items():
        alias = field.validation_alias or field.alias
        if alias is None:
            names.add(f"{prefix}{field_name}")
            continue
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
        for choice in choices:
            names.add(str(choice.path[0]) if isinstance(choice, AliasPath) else choice)
    if cls.model_config.get("case_sensitive"):
        return names
    return {name.upper() for name in names}


def environment(service: Mapping[str, Any]) -> dict[str, str | None]:
    """A service's `environment`, in either of compose's forms (mapping or `KEY=value` list)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.partition("=") for item in env)
        return {key: (value if sep else None) for key, sep, value in pairs}
    return {key: None if value is None else str(value) for key, value in env.items()}


def strings(node: object) -> Iterator[str]:
    """Every key and value in the document that compose interpolates."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield str(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def compose_variables(document: object) -> set[str]:
    """Every variable compose reads (`$$` is a literal dollar, not a variable)."""
    return {
        match["name"]
        for text in strings(document)
        for match in ANY_VARIABLE.finditer(text.replace("$$", ""))
    }


def documented_variables() -> dict[str, tuple[str, bool]]:
    """.env.example's variables: name -> (example value, whether the line is commented out)."""
    return {
        match["name"]: (match["value"].strip(), bool(match["commented"]))
        for match in DOCUMENTED.finditer(ENV_EXAMPLE.read_text())
    }


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Substitute variables the way compose does (no nesting needed here)."""

    def braced(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        value = env.get(name)
        empty = not value if op and op.startswith(":") else value is None
        if op in (":-", "-"):
            return arg if empty else str(value)
        if op in (":?", "?"):
            if empty:
                pytest.fail(f"compose would refuse to start: {name}: {arg}")
            return str(value)
        if op in (":+", "+"):
            return "" if empty else arg
        return value or ""

    text = text.replace("$$", "\0")
    text = BRACED.sub(braced, text)
    text = PLAIN.sub(lambda match: env.get(match["name"], ""), text)
    return text.replace("\0", "$")


def example_env() -> dict[str, str]:
    """The environment of someone who filled in .env.example: its empty values get secrets."""
    return {
        name: value or secrets.token_urlsafe(32)
        for name, (value, commented) in documented_variables().items()
        if not commented
    }


def app_services(compose: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if name not in (*INFRASTRUCTURE, PROVISION)
    }


def filled_in(service: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """A service's environment as compose would give it from `env` (see `example_env`)."""
    values = environment(service)
    assert None not in values.values(), "every variable has a value"
    return {name: interpolate(str(value), env) for name, value in values.items()}


def test_compose_runs_every_service_and_the_infrastructure(compose: dict[str, Any]) -> None:
    assert service_packages(), "no services/*/settings.py found"
    assert sorted(app_services(compose)) == service_packages()
    for name in INFRASTRUCTURE:
        assert name in compose["services"]
    assert compose["services"]["rabbitmq"]["image"].startswith("rabbitmq:3.13-management")
    assert compose["services"]["mongodb"]["image"].startswith("mongo:8")


def test_each_command_runs_a_real_module(compose: dict[str, Any]) -> None:
    for name, service in app_services(compose).items():
        module = f"services.{name}"
        assert service.get("command") == ["python", "-m", module], name
        assert service.get("build") == ".", f"{name} is built from the project's Dockerfile"
        assert importlib.util.find_spec(f"{module}.__main__") is not None, (
            f"`python -m {module}` needs services/{name}/__main__.py"
        )


def test_setting_names_come_from_the_settings_class() -> None:
    names = setting_names(settings_class("orders"))
    assert {"RABBITMQ_URL", "MONGODB_URL", "HEALTH_PORT", "REGISTER_ENV"} <= names
    assert "ENVIRONMENT" not in names, "a field with a validation alias is read by its alias"


def test_every_environment_variable_is_a_real_setting(compose: dict[str, Any]) -> None:
    for name, service in app_services(compose).items():
        cls = settings_class(name)
        # Every service reads the retention policy too (shared/retention_policy.py).
        unknown = set(environment(service)) - setting_names(cls) - setting_names(RetentionSettings)
        assert not unknown, f"{name} sets {sorted(unknown)}, which {cls.__name__} does not read"


def test_every_service_is_given_the_whole_retention_policy_and_its_defaults_hold_unset(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The periods must be the same in all four (each sweeps its own part): each gets every
    one from .env, and one left empty there keeps the law's default."""
    env = {**example_env(), "RETENTION_RECIPIENT_MONTHS": "30"}
    for name, service in app_services(compose).items():
        given = set(environment(service)) & setting_names(RetentionSettings)
        assert given == setting_names(RetentionSettings), f"{name} is not given all of them"
        with monkeypatch.context() as patch:
            for variable in given:
                patch.setenv(variable, interpolate(environment(service)[variable], env))
            policy = RetentionSettings()
        assert policy.recipient_months == 30, name
        assert policy.model_dump(
            exclude={"recipient_months"}
        ) == RetentionSettings.model_construct().model_dump(exclude={"recipient_months"}), name


def test_the_environment_validates_as_the_service_settings(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = example_env()
    for name, service in app_services(compose).items():
        cls = settings_class(name)
        with monkeypatch.context() as patch:
            for variable in setting_names(cls):
                patch.delenv(variable, raising=False)
            for variable, value in environment(service).items():
                assert value is not None, f"{name}: {variable} has no value"
                patch.setenv(variable, interpolate(value, env))
            settings: Any = cls()
        assert settings.environment == "production", name
        assert settings.health_host == "0.0.0.0", f"{name}'s health server must be reachable"
        assert settings.mongodb_url and urlsplit(settings.mongodb_url).hostname == "mongodb"
        assert "@rabbitmq:" in settings.rabbitmq_url
        check = " ".join(service["healthcheck"]["test"])
        assert f"127.0.0.1:{settings.health_port}/ready" in check, (
            f"{name}'s health check must ask /ready on its HEALTH_PORT"
        )


def test_services_wait_for_healthy_infrastructure_and_restart(compose: dict[str, Any]) -> None:
    for name, service in app_services(compose).items():
        depends_on = service.get("depends_on")
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions"
        for dependency in INFRASTRUCTURE:
            assert depends_on.get(dependency, {}).get("condition") == "service_healthy", (
                f"{name} must wait until {dependency} is healthy"
            )
        assert depends_on.get(PROVISION, {}).get("condition") == "service_completed_successfully", (
            f"{name} must wait until its RabbitMQ user exists"
        )
        assert service.get("restart") == "unless-stopped", name


def test_every_long_running_container_has_a_health_check(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name == PROVISION:  # it exits; the services wait for it to succeed
            continue
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name


def mounts(service: Mapping[str, Any], env: Mapping[str, str]) -> list[list[str]]:
    """Each volume as [source, target, options...], interpolated."""
    return [interpolate(str(volume), env).split(":") for volume in service.get("volumes") or []]


def test_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name in INFRASTRUCTURE:
        sources = {mount[0] for mount in mounts(compose["services"][name], example_env())}
        named = {source for source in sources if not source.startswith((".", "/"))}
        assert named, f"{name} keeps its data in a named volume"
        assert named <= declared, name
        for source in sources - named:  # a file or folder of the project, mounted
            assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"


def test_env_example_documents_every_variable_compose_reads(compose: dict[str, Any]) -> None:
    used = compose_variables(compose)
    documented = documented_variables()
    assert "IDENTITY_HASH_KEY" in used
    assert not used - set(documented), (
        f"missing from .env.example: {sorted(used - set(documented))}"
    )
    assert not set(documented) - used, (
        f".env.example documents what compose does not read: {sorted(set(documented) - used)}"
    )


def test_env_example_holds_no_secret() -> None:
    for name, (value, _) in documented_variables().items():
        if re.search(r"KEY|PASS|SECRET|TOKEN", name):
            assert value == "", f".env.example must leave {name} empty"
    assert "secrets.token_urlsafe" in ENV_EXAMPLE.read_text(), "it tells how to make a key"


def test_the_image_installs_without_dev_extras_and_runs_unprivileged() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert "[dev]" not in dockerfile
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".data", ".git", ".env"} <= set(ignored)


# --- one identity per party ---------------------------------------------------------------------


def test_each_service_logs_in_to_rabbitmq_as_its_own_provisioned_user(
    compose: dict[str, Any],
) -> None:
    from rekisteri.rabbitmq import provision
    from shared.permissions import password_variable, provisioned_parties

    provisioner = compose["services"][PROVISION]
    command = provisioner["command"]
    assert command[:3] == ["rekisteri", "rabbitmq", "provision"]
    vhost = command[command.index("--vhost") + 1]
    assert provisioner.get("restart") == "no"
    assert provisioner["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
    options = {param.envvar for param in provision.params if isinstance(param.envvar, str)}
    passwords = {password_variable(party.name) for party in provisioned_parties()}
    assert (
        set(environment(provisioner))
        == (options - {"RABBITMQ_VHOST", "RABBITMQ_USER_PREFIX"}) | passwords
    ), "provision gets the management API, its administrator and every password"
    env = example_env()
    for name, service in app_services(compose).items():
        url = urlsplit(filled_in(service, env)["RABBITMQ_URL"])
        assert (url.username, url.hostname, url.path) == (name, "rabbitmq", f"/{vhost}"), name
        assert url.password == env[password_variable(name)], name
        assert filled_in(provisioner, env)[password_variable(name)] == url.password, name


def test_each_service_logs_in_to_mongodb_as_its_own_user_of_its_own_database(
    compose: dict[str, Any],
) -> None:
    script = MONGODB_INIT_SCRIPT.read_text()
    [listed] = re.findall(r"const SERVICES = \[([^\]]*)\];", script)
    assert sorted(re.findall(r'"([a-z]+)"', listed)) == service_packages(), (
        "the init script makes a user for every service, and no other"
    )
    assert "MONGODB_PASSWORD_${service.toUpperCase()}" in script
    assert 'roles: [{ role: "readWrite", db: service }]' in script

    mongodb = compose["services"]["mongodb"]
    mounts = [str(volume).split(":") for volume in mongodb["volumes"]]
    script_path = f"./{MONGODB_INIT_SCRIPT.relative_to(ROOT)}"
    assert [script_path, "/docker-entrypoint-initdb.d/create-users.js", "ro"] in mounts
    env = example_env()
    mongodb_env = filled_in(mongodb, env)
    assert {"MONGO_INITDB_ROOT_USERNAME", "MONGO_INITDB_ROOT_PASSWORD"} <= set(mongodb_env)
    services = app_services(compose)
    for name, service in services.items():
        variable = f"MONGODB_PASSWORD_{name.upper()}"
        url = urlsplit(filled_in(service, env)["MONGODB_URL"])
        assert (url.username, url.hostname) == (name, "mongodb"), name
        assert url.password == env[variable] == mongodb_env[variable], name
        assert parse_qs(url.query)["authSource"] == [name], f"{name} authenticates in its database"
        others = {env[f"MONGODB_PASSWORD_{other.upper()}"] for other in services if other != name}
        others.add(env["MONGODB_ROOT_PASSWORD"])
        held = " ".join(filled_in(service, env).values())
        assert not any(password in held for password in others), (
            f"{name} holds no other database credentials"
        )


def test_no_long_running_service_holds_the_rabbitmq_administrator(compose: dict[str, Any]) -> None:
    """Only the one-shot `provision` container logs in as the administrator: whoever took over
    a service that held it would own the broker."""
    env = example_env()
    for name, service in app_services(compose).items():
        held = filled_in(service, env)
        assert env["RABBITMQ_DEFAULT_PASS"] not in " ".join(held.values()), name
        assert not {"RABBITMQ_MANAGEMENT_USER", "RABBITMQ_MANAGEMENT_PASSWORD"} & set(held), name
    provisioner = filled_in(compose["services"][PROVISION], env)
    assert provisioner["RABBITMQ_MANAGEMENT_PASSWORD"] == env["RABBITMQ_DEFAULT_PASS"]


# --- what the host publishes, and TLS -------------------------------------------------------------


def published(service: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """Container port -> the host address it is published on (`0.0.0.0`: every interface)."""
    ports = {}
    for entry in service.get("ports") or []:
        assert isinstance(entry, str), "ports in compose's short form"
        parts = interpolate(entry, env).split(":")
        assert len(parts) in (2, 3), entry
        ports[parts[-1].split("/")[0]] = parts[0] if len(parts) == 3 else "0.0.0.0"
    return ports


def test_the_host_publishes_amqps_and_the_local_management_ui_and_nothing_else(
    compose: dict[str, Any],
) -> None:
    env = example_env()
    rabbitmq = published(compose["services"]["rabbitmq"], env)
    assert rabbitmq == {AMQPS_PORT: "0.0.0.0", MANAGEMENT_PORT: "127.0.0.1"}, (
        "AMQPS for the parties outside, the management UI on this machine only, plain AMQP "
        "(5672) on compose's network only"
    )
    assert AMQP_PORT not in rabbitmq
    for name, service in compose["services"].items():
        if name != "rabbitmq":
            assert not service.get("ports"), f"{name} must publish no port (MongoDB included)"
            assert not service.get("network_mode"), name


def rabbitmq_conf() -> dict[str, str]:
    """deploy/rabbitmq/rabbitmq.conf's `key = value` lines."""
    settings = {}
    for line in RABBITMQ_CONF.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    return settings


def test_rabbitmq_serves_amqps_with_the_certificate_from_the_tls_folder(
    compose: dict[str, Any],
) -> None:
    env = example_env()
    conf = rabbitmq_conf()
    assert conf["listeners.ssl.default"] == AMQPS_PORT
    assert conf["listeners.tcp.default"] == AMQP_PORT
    # Parties log in with passwords: a client certificate is checked when offered, never asked.
    assert (conf["ssl_options.verify"], conf["ssl_options.fail_if_no_peer_cert"]) == (
        "verify_peer",
        "false",
    )
    assert {value for key, value in conf.items() if key.startswith("ssl_options.versions.")} == {
        "tlsv1.2",
        "tlsv1.3",
    }
    volumes = {mount[1]: mount for mount in mounts(compose["services"]["rabbitmq"], env)}
    assert volumes["/etc/rabbitmq/conf.d/20-register.conf"][0] == "./deploy/rabbitmq/rabbitmq.conf"
    folder = "/etc/rabbitmq/tls"
    assert volumes[folder][0] == "./deploy/tls" and volumes[folder][2:] == ["ro"]
    assert "TLS_DIR" in compose_variables(compose["services"]["rabbitmq"]), "configurable in .env"
    for option, file in (
        ("ssl_options.cacertfile", "ca.pem"),
        ("ssl_options.certfile", "server.pem"),
        ("ssl_options.keyfile", "server.key"),
    ):
        assert conf[option] == f"{folder}/{file}", option
        assert file in (TLS_DIR / "README.md").read_text(), f"the TLS folder's README names {file}"


def test_no_certificate_or_key_can_be_committed_from_the_tls_folder() -> None:
    ignored = (TLS_DIR / ".gitignore").read_text().split()
    assert "*" in ignored, "everything in deploy/tls/ is ignored"
    assert {"!.gitignore", "!README.md"} <= set(ignored)
    assert not [
        line for line in ignored if line.startswith("!") and line.endswith((".pem", ".key"))
    ]


def test_providers_are_told_to_connect_over_tls(compose: dict[str, Any]) -> None:
    env = example_env()
    url = urlsplit(filled_in(compose["services"]["disclosure"], env)["PROVIDER_AMQP_URL"])
    command = compose["services"][PROVISION]["command"]
    vhost = command[command.index("--vhost") + 1]
    assert (url.scheme, str(url.port), url.path) == ("amqps", AMQPS_PORT, f"/{vhost}")
    assert url.username is None and url.password is None
