"""Field types shared by the contracts: strict, bounded, and free of control characters.

Messages are validated from JSON in pydantic's strict mode, so `"1"` is not an int and `1` is
not a bool, and a MongoDB operator smuggled in as a value (`{"$gt": ""}`) is not a string.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

import email_validator
from email_validator.rfc_constants import (
    CASE_INSENSITIVE_MAILBOX_NAMES,
    EMAIL_MAX_LENGTH,
    LOCAL_PART_MAX_LENGTH,
)
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.networks import validate_email
from pydantic_core import PydanticCustomError

from shared.countries import is_country_code

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
OLDEST_BIRTH_DATE = date(1900, 1, 1)
# Clocks differ; an event stamped further ahead than this is absurd, not early.
CLOCK_SKEW = timedelta(minutes=5)


# The addresses nearly everyone has: plain ASCII dot-atoms at a domain of letter-digit-dash
# labels under an alphabetic top-level domain. For these, email-validator's verdict is known
# without running it: valid, and normalised by lower-casing the domain.
_PLAIN_ADDRESS = re.compile(
    r"(?P<local>[A-Za-z0-9_+-]{1,64}(?:\.[A-Za-z0-9_+-]{1,64})*)"
    r"@(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)
# Where email-validator has more rules than the pattern shows, it decides: IDNA labels
# (`--` in a label), special-use domains, mailbox names it lower-cases.
_SPECIAL_USE_SUFFIXES = tuple(f".{name}" for name in email_validator.SPECIAL_USE_DOMAIN_NAMES)
_CASE_INSENSITIVE_MAILBOXES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)


def _plain_address(value: str) -> str | None:
    """The normalised address when `value` is plainly valid; None when email-validator must say."""
    match = _PLAIN_ADDRESS.fullmatch(value)
    if match is None or len(value) > EMAIL_MAX_LENGTH:
        return None
    local, domain = match["local"], match["domain"].lower()
    if (
        len(local) > LOCAL_PART_MAX_LENGTH
        or "--" in domain
        or f".{domain}".endswith(_SPECIAL_USE_SUFFIXES)
        or local.lower() in _CASE_INSENSITIVE_MAILBOXES
    ):
        return None
    return f"{local}@{domain}"


def _valid_email(value: str) -> str:
    """pydantic's `EmailStr` check, with the common case answered by a pattern: email-validator
    takes longer than the rest of an order's validation together (tests/unit/test_email.py
    holds the two to the same answers)."""
    if (plain := _plain_address(value)) is not None:
        return plain
    try:
        return validate_email(value)[1]
    except PydanticCustomError as error:
        reason = _reason_without_input(str((error.context or {}).get("reason", "")))
        raise PydanticCustomError(
            "value_error", "value is not a valid email address: {reason}", {"reason": reason}
        ) from None


# email-validator's and idna's explanations quote what they refuse ("Codepoint U+1F4A9 at
# position 1 of '<the label>' not allowed", "invalid characters before the @-sign: 'ä'"); a
# rejection reason goes into dead-letter headers and logs, so it keeps only the sentence before
# any such detail, and no detail at all when even that looks as if it held some of the input.
_DETAIL = re.compile(r"\s*[(:].*", re.S)
_QUOTED_OR_FOREIGN = re.compile(r"['`\[\]@]|[^\x20-\x7e]")
_NO_DETAIL = "the address is not valid"


def _reason_without_input(reason: str) -> str:
    sentence = _DETAIL.sub("", reason).rstrip(" .")
    if not sentence or _QUOTED_OR_FOREIGN.search(sentence.replace("@-sign", "")):
        return _NO_DETAIL
    return sentence


def _printable(value: str) -> str:
    if _CONTROL_CHARACTERS.search(value):
        raise ValueError("must not contain control characters")
    return value


def bounded_text(max_length: int) -> type[str]:
    return Annotated[  # type: ignore[return-value]
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length),
        AfterValidator(_printable),
    ]


def _plausible_birth_date(value: date) -> date:
    if value < OLDEST_BIRTH_DATE:
        raise ValueError(f"must not be before {OLDEST_BIRTH_DATE.isoformat()}")
    if value > datetime.now(UTC).date():
        raise ValueError("must not be in the future")
    return value


def _known_country(value: str) -> str:
    if not is_country_code(value):
        raise ValueError("must be an ISO 3166-1 alpha-2 country code")
    return value


def _not_in_future(value: datetime) -> datetime:
    if value > datetime.now(UTC) + CLOCK_SKEW:
        raise ValueError("must not be in the future")
    return value


Name = bounded_text(100)
Title = bounded_text(200)
Street = bounded_text(200)
City = bounded_text(100)
TextVersion = bounded_text(64)
PostalCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 -]{1,11}$")]
Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 ()-]{4,22}[0-9]$")]
Email = Annotated[
    str,
    StringConstraints(max_length=254),
    AfterValidator(_valid_email),
    WithJsonSchema({"format": "email", "maxLength": 254, "type": "string"}),
]
CountryCode = Annotated[
    str, StringConstraints(pattern=r"^[A-Z]{2}$"), AfterValidator(_known_country)
]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
# Where a consent change was made (`account-page`, `unsubscribe-link`): a short lower-case name.
Source = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,63}$")]
# The keyed hash that names a person between the services (shared.identity): 64 hex digits.
SubjectHash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
# Provider ids become queue names and routing keys: lower-case letters, digits and dashes only.
ProviderId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]
BirthDate = Annotated[date, AfterValidator(_plausible_birth_date)]
EventTime = Annotated[AwareDatetime, AfterValidator(_not_in_future)]
Gender = Literal["female", "male", "other"]


class Contract(BaseModel):
    """Base of every message: strict types, unknown fields refused, immutable."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
