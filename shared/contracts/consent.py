"""The consent service's contracts: its `consent.changed` event, its commands and the audience.

People are named here by their subject hash (`shared.identity`) only, except in what an operator
asks for by email and in the audience export, whose purpose is to address them.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args
from uuid import UUID

from pydantic import AwareDatetime, Field

from shared.contracts.erasure import ReportSubject
from shared.contracts.fields import Contract, Email, Name, SubjectHash

Purpose = Literal["newsletter", "marketing"]
"""What a buyer may permit: bulletins ("tiedotteet") and marketing messages."""
PURPOSES: tuple[Purpose, ...] = get_args(Purpose)


class ConsentSummary(Contract):
    """A person's permissions and objection as they stand.

    `newsletter` and `marketing` are the latest answers (absent: never asked). `may_contact`
    lists the purposes the person may be contacted for now: permission granted and no
    objection. While `objected` is true it is empty, whatever the permissions say.
    """

    newsletter: bool | None = None
    marketing: bool | None = None
    objected: bool = False
    may_contact: list[Purpose] = Field(default_factory=list)


class ConsentChanged(ConsentSummary):
    """A person's consent state changed: routing key `consent.changed` on `register.events`.

    Published only when the summary differs from the one last published for the person.
    Delivery is at least once and may be out of order: `version` grows with every fact recorded
    about the person, so keep the highest you have seen. `event_id` and `occurred_at` are those
    of the event whose handling published the change.
    """

    subject: SubjectHash
    version: int = Field(ge=1)
    event_id: UUID
    occurred_at: AwareDatetime


class Contact(Contract):
    """What a marketing export needs to address a buyer: one row of the audience."""

    email: Email
    first_name: Name
    last_name: Name


class ShowConsent(Contract):
    command: Literal["consent.show"] = "consent.show"
    email: Email


class ExportAudience(Contract):
    """Everyone who may be contacted for `purpose` now; answered as a stream of `Contact` rows."""

    command: Literal["marketing.audience"] = "marketing.audience"
    purpose: Purpose


ConsentCommand = Annotated[ShowConsent | ReportSubject, Field(discriminator="command")]
ConsentStream = ExportAudience  # the commands answered in pages
