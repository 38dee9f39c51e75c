"""Hypothesis strategies: what the web shop may send about one person, and how it may arrive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from shared import topology
from tests.factories import consent_updated, marketing_objection, order_placed, person

Delivery = tuple[str, dict[str, Any]]
"""A routing key and the payload published with it."""

EMAIL = "aino.virtanen@example.fi"
# A day back, so that no generated event is in the future; few distinct minutes, so ties occur.
BASE = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=1)
moments = st.integers(min_value=0, max_value=4).map(
    lambda minutes: BASE + timedelta(minutes=minutes)
)
maybe = st.one_of(st.none(), st.booleans())


def _with_id(delivery: Delivery, event_id: Any) -> Delivery:
    routing_key, payload = delivery
    return routing_key, {**payload, "event_id": str(event_id)}


_checkouts = st.builds(
    lambda at, newsletter, marketing, last_name: (
        topology.ORDER_PLACED,
        order_placed(
            buyer=person("Aino", last_name, EMAIL),
            occurred_at=at,
            newsletter=newsletter,
            marketing=marketing,
        ),
    ),
    moments,
    st.booleans(),
    st.booleans(),
    st.sampled_from(["Virtanen", "Laine"]),
)
_updates = st.builds(
    lambda at, newsletter, marketing: (
        topology.CONSENT_UPDATED,
        consent_updated(EMAIL, newsletter=newsletter, marketing=marketing, occurred_at=at),
    ),
    moments,
    maybe,
    maybe,
).filter(lambda delivery: "newsletter" in delivery[1] or "marketing" in delivery[1])
_objections = st.builds(
    lambda at, objected: (
        topology.MARKETING_OBJECTION,
        marketing_objection(EMAIL, objected=objected, occurred_at=at),
    ),
    moments,
    st.booleans(),
)

# Event ids from Hypothesis rather than the factories' random ones: ties between events that
# happened at the same moment are broken by event id, and a failing example must replay.
events = st.lists(
    st.tuples(st.one_of(_checkouts, _updates, _objections), st.uuids()).map(
        lambda pair: _with_id(*pair)
    ),
    min_size=1,
    max_size=8,
    unique_by=lambda delivery: delivery[1]["event_id"],
)


@st.composite
def two_deliveries(draw: st.DrawFn, of: list[Delivery]) -> tuple[list[Delivery], list[Delivery]]:
    """The same events delivered twice over, each time in its own order and with repeats."""
    repeats = draw(st.lists(st.sampled_from(of), max_size=4))
    return draw(st.permutations(of + repeats)), draw(st.permutations(of + repeats))
