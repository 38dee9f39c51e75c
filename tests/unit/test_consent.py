"""The consent service's rules and contracts, without a broker or a database."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from services.consent.domain import (
    AnyFact,
    fact_from_objection,
    facts_from_checkout,
    facts_from_update,
    history,
    project,
)
from shared import topology
from shared.contracts.consent import PURPOSES, ConsentSummary
from shared.contracts.webshop import ConsentUpdated, MarketingObjection, OrderPlaced
from shared.messaging import InvalidMessage, decode
from tests.factories import consent_updated, marketing_objection, order_placed, person
from tests.strategies import EMAIL, Delivery, events, two_deliveries

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def checkout(minutes: int, *, newsletter: bool, marketing: bool) -> Delivery:
    payload = order_placed(
        buyer=person("Aino", "Virtanen", EMAIL),
        occurred_at=at(minutes),
        newsletter=newsletter,
        marketing=marketing,
    )
    return topology.ORDER_PLACED, payload


def update(minutes: int, **answers: bool) -> Delivery:
    return topology.CONSENT_UPDATED, consent_updated(EMAIL, occurred_at=at(minutes), **answers)


def objection(minutes: int, objected: bool = True) -> Delivery:
    payload = marketing_objection(EMAIL, objected=objected, occurred_at=at(minutes))
    return topology.MARKETING_OBJECTION, payload


def facts_of(deliveries: Iterable[Delivery]) -> list[AnyFact]:
    """The facts the service records for these deliveries, validated as it validates them."""
    facts: list[AnyFact] = []
    for routing_key, payload in deliveries:
        if routing_key == topology.ORDER_PLACED:
            facts += facts_from_checkout(OrderPlaced.model_validate(payload, strict=False))
        elif routing_key == topology.CONSENT_UPDATED:
            facts += facts_from_update(ConsentUpdated.model_validate(payload, strict=False))
        else:
            facts.append(
                fact_from_objection(MarketingObjection.model_validate(payload, strict=False))
            )
    return facts


def summary(deliveries: Iterable[Delivery]) -> ConsentSummary:
    return project(facts_of(deliveries)).summary()


# --- the rules -------------------------------------------------------------------------------


def test_checkout_gives_one_fact_per_purpose_with_the_wording_version() -> None:
    facts = facts_of([checkout(0, newsletter=True, marketing=False)])
    assert {(f.topic, f.value, f.text_version, f.source) for f in facts} == {  # type: ignore[union-attr]
        ("newsletter", True, "2026-01", "checkout"),
        ("marketing", False, "2026-01", "checkout"),
    }


def test_an_update_changes_only_the_permission_it_names() -> None:
    state = summary([checkout(0, newsletter=True, marketing=False), update(5, marketing=True)])
    assert (state.newsletter, state.marketing) == (True, True)
    assert state.may_contact == ["newsletter", "marketing"]


def test_the_latest_answer_wins_whatever_the_order_of_arrival() -> None:
    deliveries = [
        checkout(0, newsletter=True, marketing=True),
        update(5, newsletter=False),
        update(3, newsletter=True, marketing=False),
    ]
    for arrival in (deliveries, deliveries[::-1], deliveries + deliveries):
        state = summary(arrival)
        assert (state.newsletter, state.marketing) == (False, False)


def test_without_an_answer_there_is_no_permission() -> None:
    state = summary([update(0, marketing=True)])
    assert state.newsletter is None
    assert state.may_contact == ["marketing"]


def test_an_objection_outweighs_every_permission_until_it_is_explicitly_withdrawn() -> None:
    objected = [checkout(0, newsletter=True, marketing=True), objection(1)]
    assert summary(objected).may_contact == []
    # A later checkbox, or a later permission from the account page, does not lift it.
    renewed = [*objected, checkout(2, newsletter=True, marketing=True), update(3, marketing=True)]
    state = summary(renewed)
    assert (state.newsletter, state.marketing, state.objected) == (True, True, True)
    assert state.may_contact == []
    # Only `objected: false` does, and then the permissions count again.
    assert summary([*renewed, objection(4, objected=False)]).may_contact == list(PURPOSES)


def test_an_objection_before_the_first_order_blocks_that_order_too() -> None:
    state = summary([objection(0), checkout(1, newsletter=True, marketing=True)])
    assert state.objected and state.may_contact == []


def test_a_late_objection_withdrawal_does_not_undo_a_newer_objection() -> None:
    state = summary(
        [checkout(0, newsletter=True, marketing=True), objection(5), objection(2, False)]
    )
    assert state.objected


def test_history_says_what_changed_from_what_to_what_in_the_order_it_happened() -> None:
    first = checkout(0, newsletter=True, marketing=False)
    late = update(10, marketing=True)
    between = objection(5)
    changes = history(facts_of([first, late, between]))  # the update arrived before the objection
    assert [(c.what, c.from_, c.to) for c in changes] == [
        ("marketing", None, False),
        ("newsletter", None, True),
        ("objection", None, True),
        ("marketing", False, True),
    ]
    assert changes[3].event_id == late[1]["event_id"]
    assert changes[3].source == "account-page" and changes[3].text_version == "2026-01"
    assert changes[2].source == "unsubscribe-link" and changes[2].text_version is None
    assert changes[0].model_dump(by_alias=True)["from"] is None


def replayed_in_occurrence_order(deliveries: Iterable[Delivery]) -> ConsentSummary:
    """The state as a person would tell it: every event applied in the order it happened."""
    unique = {payload["event_id"]: (key, payload) for key, payload in deliveries}.values()
    state: dict[str, Any] = {"newsletter": None, "marketing": None, "objected": False}
    for key, payload in sorted(
        unique, key=lambda d: (datetime.fromisoformat(d[1]["occurred_at"]), d[1]["event_id"])
    ):
        if key == topology.ORDER_PLACED:
            state.update({p: payload["consents"][p] for p in PURPOSES})
        elif key == topology.CONSENT_UPDATED:
            state.update({p: payload[p] for p in PURPOSES if p in payload})
        else:
            state["objected"] = payload["objected"]
    may_contact = [] if state["objected"] else [p for p in PURPOSES if state[p]]
    return ConsentSummary(**state, may_contact=may_contact)


@given(sent=events, data=st.data())
def test_the_same_events_give_the_same_state_and_history_however_they_arrive(
    sent: list[Delivery], data: st.DataObject
) -> None:
    first, second = data.draw(two_deliveries(sent))
    assert summary(first) == summary(second) == replayed_in_occurrence_order(sent)
    assert project(facts_of(first)) == project(facts_of(second))
    assert history(facts_of(first)) == history(facts_of(second))


# --- the web shop's contracts ----------------------------------------------------------------


def decode_as(model: type[Any], payload: dict[str, Any] | bytes) -> Any:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return decode(body, TypeAdapter(model), 256 * 1024)


def test_the_documented_examples_are_valid() -> None:
    updated = decode_as(ConsentUpdated, (EXAMPLES / "consent-updated.json").read_bytes())
    assert (updated.newsletter, updated.marketing) == (None, True)
    objected = decode_as(MarketingObjection, (EXAMPLES / "marketing-objection.json").read_bytes())
    assert objected.objected is True


@pytest.mark.parametrize(
    ("model", "payload", "reason"),
    [
        (ConsentUpdated, consent_updated(EMAIL), "names no permission"),
        (ConsentUpdated, {**consent_updated(EMAIL, marketing=True), "marketing": 1}, "marketing"),
        (
            ConsentUpdated,
            {**consent_updated(EMAIL, marketing=True), "source": "Web Page"},
            "source",
        ),
        (ConsentUpdated, {**consent_updated(EMAIL, marketing=True), "email": "nope"}, "email"),
        (
            ConsentUpdated,
            {**consent_updated(EMAIL, marketing=True), "text_version": ""},
            "text_version",
        ),
        (MarketingObjection, {**marketing_objection(EMAIL), "objected": "false"}, "objected"),
        (MarketingObjection, {**marketing_objection(EMAIL), "source": "x" * 65}, "source"),
        (MarketingObjection, {**marketing_objection(EMAIL), "text_version": "1"}, "Extra inputs"),
    ],
)
def test_invalid_consent_events_are_refused_with_a_reason_that_names_no_value(
    model: type[Any], payload: dict[str, Any], reason: str
) -> None:
    with pytest.raises(InvalidMessage) as refused:
        decode_as(model, payload)
    assert reason in refused.value.reason
    assert EMAIL not in refused.value.reason
