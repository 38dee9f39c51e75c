"""Email addresses: the contracts' check answers exactly as pydantic's `EmailStr`
(email-validator) does, although it answers the common addresses with a pattern of its own;
its rejection reasons never quote the address; and the identity merges the spellings of one
mailbox but never two mailboxes."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError
from pydantic.networks import validate_email

from shared.contracts.fields import Email, _plain_address
from shared.contracts.webshop import ErasureRequested
from shared.identity import SubjectHasher, normalise_email
from shared.messaging import InvalidMessage, decode, describe_validation_error

ROOT = Path(__file__).resolve().parents[2]

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


# --- the identity: which spellings are one person --------------------------------------------

HASHER = SubjectHasher("unit-test-key")


@pytest.mark.parametrize(
    ("one", "same"),
    [
        ("Aino@Example.FI", "aino@example.fi"),
        (" AINO.VIRTANEN@example.fi ", "aino.virtanen@example.fi"),
        ("\uff21\uff29\uff2e\uff2f@example.fi", "aino@example.fi"),  # full-width AINO
        ("äiti@BÜCHER.example", "ÄITI@xn--bcher-kva.example"),
        ("a@bücher.example", "a@XN--BCHER-KVA.EXAMPLE"),
    ],
)
def test_spellings_of_one_mailbox_are_one_person(one: str, same: str) -> None:
    assert HASHER(one) == HASHER(same)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("straße@example.fi", "strasse@example.fi"),
        ("a@straße.example", "a@strasse.example"),  # two registrable domains under IDNA2008
        ("\u03b1\u03c2@example.gr", "\u03b1\u03c3@example.gr"),  # final, medial sigma
    ],
)
def test_distinct_mailboxes_stay_distinct_people(one: str, other: str) -> None:
    assert HASHER(one) != HASHER(other)


@pytest.mark.parametrize(
    "value", ["Aino.Virtanen@Example.FI", "äiti@Esimerkki.fi", "a@bücher.example", "ÄITI@BÜCHER.fi"]
)
def test_an_address_as_the_contracts_pass_it_on_is_the_same_person(value: str) -> None:
    # The services hash what validation returned (email-validator's form: Unicode domain),
    # a staff member may type the address another way: both name one person.
    assert HASHER(EMAIL.validate_python(value)) == HASHER(value)


def casefolded(email: str) -> str:
    """The normalisation before issue 18, for the migration note's claim."""
    return unicodedata.normalize("NFKC", email).strip().casefold()


@given(
    st.text(st.sampled_from("aZ09.+_äÄöÖ\u00df\u03c3\u03c2\u03a3\u0130\u13a0\uab70"), min_size=1),
    st.sampled_from(["example.fi", "Example.FI", "esimerkki.fi", "bücher.example", "Bücher.fi"]),
)
@example("Aino.Virtanen", "Example.FI")
def test_hashes_change_only_where_casefold_and_lower_differ_or_the_domain_is_not_ascii(
    local: str, domain: str
) -> None:
    email = f"{local}@{domain}"
    if email.casefold() == email.lower() and domain.isascii():
        assert normalise_email(email) == casefolded(email)
    else:
        assert normalise_email(email) != casefolded(email)


def test_a_changed_hash_is_that_of_an_address_casefold_merged() -> None:
    # docs/operators.md, "Upgrading: identity hashes": such a person is under the old hash.
    assert normalise_email("Straße@example.fi") == "straße@example.fi"
    assert casefolded("Straße@example.fi") == "strasse@example.fi"
    assert normalise_email("a@Bücher.example") == "a@xn--bcher-kva.example"


# --- rejection reasons name the field, never the value ---------------------------------------

MARKER = "qz"  # in every label of the addresses below, and in no message of email-validator


def erasure_request(email: str) -> bytes:
    body = json.loads((ROOT / "docs" / "examples" / "erasure-requested.json").read_text())
    return json.dumps({**body, "email": email}).encode()


def rejection_reason(email: str) -> str:
    with pytest.raises(InvalidMessage) as refused:
        decode(erasure_request(email), TypeAdapter(ErasureRequested), 64 * 1024)
    return refused.value.reason


@pytest.mark.parametrize(
    "email",
    [
        "aino@qz\u0660\u06f0.fi",  # idna: "Codepoint U+0660 not allowed at position 3 in '...'"
        "aino@xn--qz-\U0001f4a9.fi",
        "aino@qz\U0001f4a9.fi",  # idna: "Codepoint U+1F4A9 at position 3 of '...' not allowed"
        "aino@xn--qzzz.fi",  # an A-label that is not Punycode
        "aino@qz\u200d.fi",
        "qz,aino@example.fi",  # "invalid characters before the @-sign: ','"
        "qzä\u0301\u200baino@example.fi",
        "aino@qz_virtanen.fi",
    ],
)
def test_a_bad_address_is_refused_naming_the_field_only(email: str) -> None:
    reason = rejection_reason(email)
    assert reason.startswith("email: value is not a valid email address")
    assert MARKER not in reason.lower(), reason
    assert reason.isascii() and "'" not in reason, reason


def test_a_bad_idn_domain_is_refused_with_what_is_wrong_but_not_the_label() -> None:
    # idna says "Codepoint U+1F4A9 at position 1 of '\U0001f4a9' not allowed".
    assert rejection_reason("aino@xn--ls8h.fi") == (
        "email: value is not a valid email address: The part after the @-sign is not valid IDNA"
    )


label_characters = st.sampled_from("az09-.ä\u0660\u200d_,'\U0001f4a9ß")
bad_looking = st.builds(
    lambda local, labels, punycode: (
        f"{MARKER}{local}@"
        + ".".join(f"{'xn--' if punycode else ''}{MARKER}{label}" for label in labels)
        + ".fi"
    ),
    st.text(label_characters, max_size=8),
    st.lists(st.text(label_characters, max_size=8), min_size=1, max_size=3),
    st.booleans(),
)


@settings(max_examples=500)
@given(bad_looking)
def test_no_rejection_reason_quotes_the_address(email: str) -> None:
    try:
        EMAIL.validate_python(email)
    except ValidationError as error:
        reason = describe_validation_error(error)
        assert MARKER not in reason.lower(), (email, reason)
        assert reason.isascii(), (email, reason)
