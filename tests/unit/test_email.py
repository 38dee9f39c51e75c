"""The contracts' email check answers exactly as pydantic's `EmailStr` (email-validator) does,
although it answers the common addresses with a pattern of its own."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError
from pydantic.networks import validate_email

from shared.contracts.fields import Email, _plain_address

EMAIL = TypeAdapter(Email)

# Characters near the pattern's edges: what it takes, what email-validator takes and it leaves
# to email-validator, and what nobody takes.
LOCAL_CHARACTERS = "aZ09_+-.!#'~\"ä "
DOMAIN_CHARACTERS = "aZ09-.ä_"
labels = st.text(DOMAIN_CHARACTERS, min_size=0, max_size=12)
top_level = st.sampled_from(
    ["fi", "COM", "x", "a1", "123", "test", "localhost", "local", "onion", "invalid", "arpa"]
)
addresses = st.builds(
    lambda local, domain, tld, at: f"{local}{at}{domain}{tld}",
    st.text(LOCAL_CHARACTERS, min_size=0, max_size=70),
    st.lists(labels, min_size=0, max_size=4).map(lambda parts: "".join(f"{p}." for p in parts)),
    top_level,
    st.sampled_from(["@", "@@", ""]),
)


def email_validator_says(value: str) -> str | None:
    try:
        return validate_email(value)[1]
    except ValueError:
        return None


@settings(max_examples=3000)
@given(addresses)
@example("Aino.Virtanen@Example.FI")
@example("postmaster@example.fi")
@example("a@xn--bcher-kva.example")
@example("a@ab--cd.fi")
@example("a@example.test")
@example("a@sub.example.local")
@example("a..b@example.fi")
@example(".a@example.fi")
@example("a@-example.fi")
@example("a@example-.fi")
@example("a@example.f1")
@example("x" * 65 + "@example.fi")
@example("a@" + "b" * 64 + ".fi")
@example("a@" + ("b" * 60 + ".") * 4 + "fi")
def test_the_pattern_answers_only_what_email_validator_would(value: str) -> None:
    plain = _plain_address(value)
    if plain is not None:
        assert plain == email_validator_says(value)


@pytest.mark.parametrize(
    ("value", "normalised"),
    [
        ("aino.virtanen@example.fi", "aino.virtanen@example.fi"),
        ("Aino+gifts@Example.FI", "Aino+gifts@example.fi"),
        ("Postmaster@example.fi", "postmaster@example.fi"),
        ("äiti@esimerkki.fi", "äiti@esimerkki.fi"),
        ("a@bücher.example", "a@bücher.example"),
    ],
)
def test_valid_addresses_are_normalised_as_email_validator_does(
    value: str, normalised: str
) -> None:
    assert EMAIL.validate_python(value) == normalised == validate_email(value)[1]


@pytest.mark.parametrize(
    "value",
    ["a@example.test", "a@localhost", "a..b@example.fi", "a@ab--cd.fi", "no-at-sign.fi", "a@b"],
)
def test_invalid_addresses_are_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        EMAIL.validate_python(value)


def test_common_addresses_are_answered_by_the_pattern() -> None:
    # The point of the pattern: the web shop's usual addresses never reach email-validator.
    assert _plain_address("buyer-1234@example.fi") == "buyer-1234@example.fi"
    assert _plain_address("Aino.Virtanen+lahjat@Posti.Example.COM") == (
        "Aino.Virtanen+lahjat@posti.example.com"
    )
