"""Which dead letters an erasure takes out: those naming the person by any spelling of their
email that the services file under the same keyed hash, or by that hash, and no others."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from services.orders.domain import order_from_event
from shared.contracts.webshop import ErasureRequested, OrderPlaced
from shared.dead_letters import mentions_subject
from shared.identity import SubjectHasher
from tests.factories import consent_updated, erasure_requested, order_placed, person

HASHER = SubjectHasher("unit-test-key")
AINO = "aino.virtanen@bücher.example"


def requested_erasure_of(email: str) -> str:
    """The subject an erasure asked for with this email is about, as the erasure service
    computes it: the web shop's form validated by its contract, then hashed."""
    form = ErasureRequested.model_validate_json(json.dumps(erasure_requested(email=email)))
    return HASHER(form.email)


def body(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False).encode()


SPELLINGS = [
    pytest.param("AINO.VIRTANEN@BÜCHER.EXAMPLE", id="upper case"),
    pytest.param("Aino.Virtanen@xn--bcher-kva.example", id="IDNA domain in its ASCII form"),
    pytest.param("aino.virtanen@XN--BCHER-KVA.EXAMPLE", id="ASCII domain in upper case"),
    pytest.param(
        "\uff41\uff49\uff4e\uff4f.virtanen@bücher.example", id="full-width letters (NFKC)"
    ),
    pytest.param("aino.virtanen@bu\u0308cher.example", id="decomposed umlaut (NFKC)"),
    pytest.param("  aino.virtanen@bücher.example ", id="surrounding spaces"),
]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_an_order_naming_the_buyer_by_another_spelling_of_the_email_is_hers(
    spelling: str,
) -> None:
    order = order_placed(buyer=person("Aino", "Virtanen", spelling))
    assert mentions_subject(body(order), requested_erasure_of(AINO), HASHER)


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_an_order_naming_her_as_the_gift_cards_recipient_is_hers(spelling: str) -> None:
    order = order_placed(recipient=person("Aino", "Virtanen", spelling))
    assert mentions_subject(body(order), requested_erasure_of(AINO), HASHER)


def test_her_dead_letter_is_found_under_the_subject_the_orders_service_filed_her_under() -> None:
    """Whichever spelling reached which service first, the services and the clean-up agree."""
    placed = order_placed(buyer=person("Aino", "Virtanen", "Aino.Virtanen@XN--BCHER-KVA.example"))
    filed = order_from_event(
        OrderPlaced.model_validate_json(body(placed)), HASHER, recorded_at=datetime.now(UTC)
    )
    consent_change = consent_updated("AINO.virtanen@bücher.EXAMPLE", newsletter=False)
    assert mentions_subject(body(consent_change), filed.buyer_subject, HASHER)
    assert filed.buyer_subject == requested_erasure_of(AINO)


def test_a_recipient_without_an_email_is_found_by_their_place_on_the_order() -> None:
    gift = order_placed(recipient=person("Eino", "Korhonen", None))
    another = order_placed(recipient=person("Eino", "Korhonen", None))
    filed = order_from_event(
        OrderPlaced.model_validate_json(body(gift)), HASHER, recorded_at=datetime.now(UTC)
    )
    assert filed.recipient_subject is not None
    assert mentions_subject(body(gift), filed.recipient_subject, HASHER)
    disclosure = {"type": "disclosure", "order_id": gift["order_id"], "recipient": {"x": "y"}}
    assert mentions_subject(body(disclosure), filed.recipient_subject, HASHER)
    assert not mentions_subject(body(another), filed.recipient_subject, HASHER)
    # The buyer has an email: she is named by it, never by her place on the order.
    assert not mentions_subject(
        body(gift), HASHER.of_order_person(gift["order_id"], "buyer"), HASHER
    )


def test_an_email_inside_a_text_is_found() -> None:
    note = {"note": "asked by phone; Aino <AINO.Virtanen@bücher.example>, order KK-1"}
    assert mentions_subject(body(note), requested_erasure_of(AINO), HASHER)


def test_an_internal_message_naming_her_by_her_subject_hash_is_hers() -> None:
    subject = requested_erasure_of(AINO)
    other = requested_erasure_of("eino.korhonen@example.fi")
    assert mentions_subject(body({"subject": subject, "reason": "misuse"}), subject, HASHER)
    assert mentions_subject(body({"subjects": [other, subject]}), subject, HASHER)
    assert mentions_subject(body({"reference": f"erased:{subject}"}), subject, HASHER)
    assert mentions_subject(body({"by_subject": {subject: 2}}), subject, HASHER)
    assert not mentions_subject(body({"subject": other}), subject, HASHER)


@pytest.mark.parametrize(
    "someone_else",
    [
        "aino.virtanen2@bücher.example",
        "aino.virtanen@bucher.example",
        "aino.virtanen@bücher.example.fi",
        "aino.virtanen.bücher.example",
        "aino.virtanen@",
    ],
)
def test_a_message_about_someone_else_is_not_hers(someone_else: str) -> None:
    order = order_placed(
        buyer=person("Aino", "Virtanen", someone_else),
        recipient=person("Eino", "Korhonen", "eino.korhonen@example.fi"),
    )
    assert not mentions_subject(body(order), requested_erasure_of(AINO), HASHER)


def test_a_body_that_is_not_json_names_nobody_the_register_can_tell() -> None:
    subject = requested_erasure_of(AINO)
    assert not mentions_subject(AINO.encode() + b"\xff{", subject, HASHER)


@pytest.mark.parametrize("subject", ["", "a", "aino.virtanen@bücher.example", "A" * 64])
def test_nothing_is_matched_by_anything_but_a_subject_hash(subject: str) -> None:
    """A mistaken empty or short subject would be found inside every message: refused."""
    with pytest.raises(ValueError, match="64 hexadecimal digits"):
        mentions_subject(body(order_placed()), subject, HASHER)
