"""`rekisteri register-description`: the register description (rekisteriseloste, privacy
notice) of the register as it runs now.

The wording is in rekisteri/templates/register_description_{fi,en}.md; the facts come from
the running register: the controller from `CONTROLLER_*` settings, the retention periods from
the policy (`RETENTION_*`, shared/retention_policy.py), the purposes from shared/purposes.py,
and the providers data is disclosed to from the disclosure service's registry, asked now.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal, cast

import click
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rekisteri.document import Document, Template, to_html, to_markdown
from rekisteri.output import call, output_option, write_document
from rekisteri.retention import language_option
from shared.contracts.providers import ListProviders, ProviderStatus
from shared.countries import is_country_code, is_in_eea
from shared.purposes import PURPOSES
from shared.retention_policy import (
    Language,
    RetentionPolicy,
    describe_settings_error,
    finnish_date,
    policy_from_environment,
)

Format = Literal["markdown", "html"]
FORMATS: tuple[Format, ...] = ("markdown", "html")


class ControllerSettings(BaseSettings):
    """Who the controller is, from `CONTROLLER_<FIELD>`; the defaults are those of the register
    description of 31.5.2008. An optional field set to "" leaves its line out."""

    model_config = SettingsConfigDict(env_prefix="CONTROLLER_", extra="ignore", frozen=True)

    name: str = Field(default="Kokemuskauppa Oy", min_length=1)
    business_id: str = Field(default="2173478-3", min_length=1)
    address: str = Field(default="Syrjälänkatu 2 B 9, 40700 Jyväskylä", min_length=1)
    country: str = Field(default="FI", description="ISO 3166-1 alpha-2 code.")
    phone: str = "044 038 5005"
    email: str = Field(default="posti@kokemuskauppa.com", min_length=3)
    website: str = Field(default="www.kokemuskauppa.com", min_length=1)
    contact_person: str = ""
    contact_email: str = Field(default="", description="Where privacy requests go; unset: `email`.")
    register_name_fi: str = Field(default="Kokemuskauppa Oy:n asiakasrekisteri", min_length=1)
    register_name_en: str = Field(default="Kokemuskauppa Oy's customer register", min_length=1)

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str) -> str:
        if not is_country_code(value.upper()):
            raise ValueError("must be an ISO 3166-1 alpha-2 country code")
        return value.upper()

    @property
    def request_email(self) -> str:
        return self.contact_email or self.email


@dataclass(frozen=True)
class DisclosedTo:
    """A provider personal data is regularly disclosed to, as the description names it."""

    name: str
    country: str


def disclosed_to(providers: Iterable[Mapping[str, Any]]) -> list[DisclosedTo]:
    """The providers that now receive data: active and in the EEA (a suspended one's
    disclosures are held; the registry refuses one outside the EEA), sorted by name."""
    named = {
        DisclosedTo(str(provider["name"]), str(provider["country"]))
        for provider in providers
        if provider.get("status") == ProviderStatus.ACTIVE
        and is_in_eea(str(provider.get("country", "")))
    }
    return sorted(named, key=lambda p: (p.name.casefold(), p.name, p.country))


def load_template(language: Language) -> Template:
    name = f"register_description_{language}.md"
    source = files("rekisteri").joinpath("templates", name).read_text(encoding="utf-8")
    return Template(name, source)


def _country(template: Template, code: str) -> str:
    key = f"country.{code}"
    return template.phrase(key) if template.has_phrase(key) else code


def _dated(template: Template, day: date) -> str:
    month_key = f"month.{day.month}"
    month_name = template.phrase(month_key) if template.has_phrase(month_key) else ""
    return template.phrase(
        "date",
        day=str(day.day),
        month=str(day.month),
        month_name=month_name,
        year=str(day.year),
    )


def describe(
    language: Language,
    controller: ControllerSettings,
    policy: RetentionPolicy,
    providers: Iterable[DisclosedTo],
    dated: date,
) -> Document:
    """The register description in `language`, with these facts."""
    template = load_template(language)
    facts = {
        "register_name": getattr(controller, f"register_name_{language}"),
        "controller_name": controller.name,
        "business_id": controller.business_id,
        "address": controller.address,
        "country": _country(template, controller.country),
        "phone": controller.phone,
        "email": controller.email,
        "website": controller.website,
        "contact_person": controller.contact_person,
        "request_email": controller.request_email,
        "dated": _dated(template, dated),
    }
    lists = {
        "purposes": [
            template.phrase(
                "item.purpose", title=p.title.in_(language), basis=p.basis.in_(language)
            )
            for p in PURPOSES
        ],
        "providers": [
            template.phrase("item.provider", name=p.name, country=_country(template, p.country))
            for p in providers
        ],
        "retention": [
            template.phrase("item.retention", **retention.describe(language))
            for retention in policy
        ],
    }
    return template.fill(language, facts, lists)


def render(document: Document, output_format: Format) -> str:
    return to_html(document) if output_format == "html" else to_markdown(document)


def _controller_settings() -> ControllerSettings:
    try:
        return ControllerSettings()
    except ValidationError as error:
        raise click.ClickException(
            "controller settings: " + describe_settings_error(error, "CONTROLLER_")
        ) from None


@click.command("register-description")
@language_option("fi")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    default="markdown",
    show_default=True,
    help="Markdown, or a complete HTML page to publish as it is.",
)
@output_option("it")
@click.pass_context
def register_description(
    context: click.Context, language: str, output_format: str, output: Path | None
) -> None:
    """The register description (rekisteriseloste / privacy notice) of the register as it runs.

    Names every provider data is disclosed to now (asked of the disclosure service), the
    retention periods of RETENTION_* and the controller of CONTROLLER_* (docs/privacy.md).
    """
    controller = _controller_settings()
    try:
        policy = policy_from_environment()
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    providers = disclosed_to(call(context, "disclosure", ListProviders()))
    document = describe(
        cast("Language", language), controller, policy, providers, finnish_date(datetime.now(UTC))
    )
    write_document(render(document, cast("Format", output_format)), output, "register description")
