"""Whom the services take a message from, judged by its AMQP `user_id`.

RabbitMQ refuses a message whose `user_id` property is not the user that published it, so the
property names the sender as surely as the broker's login does. The delivery rules ask this
module about every delivery (shared/messaging.py, shared/commands.py, shared/requests.py):

- a command (the `ops.*` queues) is carried out only for a staff user,
  `<RABBITMQ_USER_PREFIX>staff-<name>`;
- a message between the parties is taken only from the party entitled to send it (`Senders`,
  named where each service subscribes, in services/<name>/handlers.py): the web shop's events
  from the web shop, `erase.subject.*` from the erasure service, `erasure.reported` from the
  service it reports for, `consent.changed` from the consent service;
- with `REGISTER_ENV=dev` the broker's `guest` counts as staff and as every party, so that
  `make dev`, where everything logs in as guest, works as before.

The permission table (shared/permissions.py) stops what RabbitMQ can stop, but not this: every
service must write to `amq.default` to answer commands over direct reply-to, and RabbitMQ cannot
narrow which queue a message sent there reaches, so any service's login can put a message in any
queue. The `user_id` is what such a message cannot lie about.

**Relays.** A dead letter sent again (`rekisteri dlq replay`) goes out under the replaying
service's login, not its first sender's. It carries that first sender in `RELAYED_FOR_HEADER`,
and a receiver believes the header only from a relay it trusts: itself (its own dead letters,
sent back to its own queue) and, for the web shop's events, the service that offers the web
shop's unroutable messages to `webshop` again. Whoever holds a trusted relay's login can
therefore speak for the parties it relays for (docs/security.md, what is not protected yet).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from yarl import URL

from shared import topology
from shared.permissions import STAFF_NAME, STAFF_PREFIX, WEBSHOP
from shared.settings import ServiceSettings

GUEST = "guest"
"""RabbitMQ's development login: with REGISTER_ENV=dev, staff and every party."""
ORIGINAL_USER_ID_HEADER = "x-original-user-id"
"""On a dead letter: the user the message was judged to come from when it was dead-lettered."""
RELAYED_FOR_HEADER = "x-relayed-for"
"""On a replayed dead letter: the user that first sent it (empty: it carried no user id)."""
NO_USER_ID = (
    "refused: the command carries no AMQP user_id; send it with `rekisteri`, which sets it to "
    "the RabbitMQ user it logs in as"
)


def login_of(rabbitmq_url: str) -> str:
    """The RabbitMQ user a service logs in as (AMQP's default, guest, when the URL names none)."""
    return URL(rabbitmq_url).user or GUEST


@dataclass(frozen=True)
class Logins:
    """The deployment's RabbitMQ users, as one service tells them apart."""

    prefix: str
    own: str
    dev: bool

    @classmethod
    def of(cls, settings: ServiceSettings) -> Logins:
        return cls(
            settings.rabbitmq_user_prefix,
            login_of(settings.rabbitmq_url),
            settings.environment == "dev",
        )

    def user(self, party: str) -> str:
        return self.prefix + party

    def party(self, user_id: str) -> str | None:
        """`orders` for the user `<prefix>orders`; None for a user without the prefix."""
        if not user_id.startswith(self.prefix):
            return None
        return user_id[len(self.prefix) :] or None

    def is_anyone(self, user_id: str | None) -> bool:
        """Development's guest, who counts as every party."""
        return self.dev and user_id == GUEST

    def is_staff(self, user_id: str) -> bool:
        party = self.party(user_id) or ""
        name = party.removeprefix(STAFF_PREFIX)
        return self.is_anyone(user_id) or (
            party.startswith(STAFF_PREFIX) and STAFF_NAME.match(name) is not None
        )


def command_refusal(user_id: str | None, logins: Logins) -> str | None:
    """Why a command may not be carried out for this user id; None when it may."""
    if not user_id:
        return NO_USER_ID
    if logins.is_staff(user_id):
        return None
    return (
        f"refused: user {user_id} is not a staff user; commands are carried out only for staff "
        f"users ({logins.user(STAFF_PREFIX)}<name>)"
    )


@dataclass(frozen=True)
class Senders:
    """Who may send the messages of one subscription.

    `parties`: their users without the prefix (`webshop`, `erasure`). `named_by`: a field of the
    message naming the one party among them that may send that message (`erasure.reported`'s
    `service`). `relayed_by`: parties trusted to send on the messages of others (see the module
    docstring); the consuming service itself always is.
    """

    parties: frozenset[str]
    named_by: str | None = None
    relayed_by: frozenset[str] = frozenset()

    def users(self, logins: Logins) -> str:
        return " or ".join(f"user {logins.user(party)}" for party in sorted(self.parties))


FROM_WEBSHOP = Senders(
    frozenset({WEBSHOP}), relayed_by=frozenset({topology.UNROUTABLE_QUEUE_OWNER})
)
"""`order.placed`, `consent.updated`, `marketing.objection`, `erasure.requested`."""
FROM_ERASURE = Senders(frozenset({"erasure"}))
"""`erase.subject.<service>`."""
FROM_THE_SERVICE_IT_NAMES = Senders(frozenset(topology.ERASURE_PARTICIPANTS), named_by="service")
"""`erasure.reported`: a service reports only for itself."""


@dataclass(frozen=True)
class Sender:
    """Whom a message is judged to come from, and who sent it on if it is a replay."""

    user_id: str | None
    relay: str | None = None

    def __str__(self) -> str:
        sent = f"sent by user {self.user_id}" if self.user_id else "carries no AMQP user_id"
        return sent + (f", relayed by user {self.relay}" if self.relay else "")


def first_sender(
    user_id: str | None, headers: Mapping[str, Any] | None, *, unroutable: bool
) -> str:
    """Whom a dead letter was first sent by, for its replay to carry in `RELAYED_FOR_HEADER`
    ("" for no one: the replay is then refused as carrying no user id).

    A dead letter a service wrote (shared/messaging.py `dead_letter`) has no `user_id` of its
    own and names the sender it was judged to come from in `ORIGINAL_USER_ID_HEADER`. One the
    broker dead-lettered keeps the `user_id` it was published with. Anyone who may publish to
    `webshop.unroutable` can put headers into the web shop's unroutable catch-all, so there
    only the `user_id` counts.
    """
    if user_id or unroutable:
        return user_id or ""
    return _text((headers or {}).get(ORIGINAL_USER_ID_HEADER)) or ""


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value if isinstance(value, str) else None


def sender_of(
    user_id: str | None, headers: Mapping[str, Any] | None, senders: Senders, logins: Logins
) -> Sender:
    """The message's `user_id`, or, from a relay this subscription trusts, the one it relays for."""
    relays = user_id == logins.own or (
        user_id is not None and logins.party(user_id) in senders.relayed_by
    )
    relayed_for = _text((headers or {}).get(RELAYED_FOR_HEADER)) if relays else None
    if relayed_for is not None:
        return Sender(relayed_for or None, relay=user_id)
    return Sender(user_id)


def sender_refusal(sender: Sender, senders: Senders, logins: Logins) -> str | None:
    """Why the message may not be taken from its sender; None when it may (so far as its
    properties tell: see `named_refusal` for what its body says)."""
    if sender.user_id is not None and (
        logins.is_anyone(sender.user_id) or logins.party(sender.user_id) in senders.parties
    ):
        return None
    return f"sender: the message {sender}; only {senders.users(logins)} may send it"


def named_refusal(sender: Sender, senders: Senders, logins: Logins, message: object) -> str | None:
    """Why the decoded message may not be taken from its sender, for one that names who may."""
    if senders.named_by is None or logins.is_anyone(sender.user_id):
        return None
    named = str(getattr(message, senders.named_by))
    if sender.user_id is not None and logins.party(sender.user_id) == named:
        return None
    return (
        f"sender: the message {sender}, but its {senders.named_by} is {named}: only user "
        f"{logins.user(named)} may send it"
    )
