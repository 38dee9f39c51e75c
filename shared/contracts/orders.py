"""Commands served by the orders service, and its answer to who is on an order.

Only the orders service knows who was on an order: by the hash of their email, or, for a
gift-card recipient without one, by the hash of their place on the order
(`shared.identity.SubjectHasher.of_order_person`). Staff ask it with `person.lookup` on `ops`
(`rekisteri report --order`); the erasure service asks it on `register.events`, and gets a
`PersonOnOrder` back over direct reply-to.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from shared.contracts.erasure import ReportSubject, Role
from shared.contracts.fields import Contract, Identifier, SubjectHash

MissingPerson = Literal["order", "person", "unnamed"]


class LookupPerson(Contract):
    """The keyed hash of the person in `role` on order `order_id`."""

    command: Literal["person.lookup"] = "person.lookup"
    order_id: Identifier
    role: Role


class PersonOnOrder(Contract):
    """The orders service's answer to the erasure service's `person.lookup`: the person's
    `subject`; without one, `missing` says why (`order`: no order has that id; `person`: the
    person in that role was erased already; `unnamed`: a person without an email on an order
    recorded before such people were named by their order), or `error` that the lookup
    failed."""

    subject: SubjectHash | None = None
    missing: MissingPerson | None = None
    error: str | None = None


def missing_person(order_id: str, role: str, missing: MissingPerson) -> str:
    """What staff are told when a lookup finds nobody; the ids are what they typed."""
    if missing == "order":
        return f"order {order_id} is not known"
    if missing == "unnamed":
        return (
            f"the {role} of order {order_id} has no email and was recorded before the register "
            "named such people by their order: they cannot be named by it (docs/privacy.md)"
        )
    return f"order {order_id} names no {role} any more: their data was erased"


OrdersCommand = Annotated[ReportSubject | LookupPerson, Field(discriminator="command")]
