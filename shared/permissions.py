"""Every party's rights on the broker, defined once: who may configure, write and read what.

RabbitMQ gives a user, per virtual host, three regular expressions over resource names. What
needs which right (checked against the real broker in tests/e2e/test_permissions.py):

- declaring an exchange or a queue, even one that exists: configure on it; creating an exchange
  with an alternate exchange also needs read on it and write on the alternate exchange, and
  creating a queue with a dead-letter exchange read on the queue and write on that exchange;
- binding a queue to an exchange: write on the queue, read on the exchange;
- publishing: write on the exchange. The default exchange is checked as `amq.default`, and it
  carries both the replies to direct reply-to addresses and messages sent to a queue by name;
- consuming, `basic.get` and purging: read on the queue;
- a passive declare, and consuming from direct reply-to: no right at all;
- on a topic exchange for which the user has a topic permission: publishing also needs the
  routing key to match its write expression, and binding the binding key its read expression
  (on any other exchange, and on a topic exchange without one, any key goes).

Since a service must write to `amq.default` (its replies), and RabbitMQ cannot narrow that by
queue, any service's login can still put a message in any queue by name: the services check
each message's sender themselves (shared/senders.py).

The register's exchanges, queues and bindings are declared once, by the administrator's
provisioning step (`register_topology`, declared by `rekisteri rabbitmq provision`); a service
logged in as its own user only finds them (a passive declare needs no right). So a service has
no configure right on anything of the register's but the providers' queues, and no read right
on any exchange but `disclosures`: it cannot bind a queue of its own to `ops`, `webshop`,
`register.events` or `dead-letter` and so receive copies of what is meant for others.

The parties are the services (their rights follow from `SERVICE_ROLES`: what each consumes,
publishes and declares for others, plus what every service does: dead-letter, answer
commands), the web shop, each staff member and each provider. `rekisteri rabbitmq provision`
gives the services, the web shop and staff their users, `rekisteri providers credentials`
each provider its own. docs/security.md's table is generated from `parties()` (`make
security-doc`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from faststream.rabbit import ExchangeType, RabbitExchange, RabbitQueue

from shared import topology
from shared.topology import Subscription

DEFAULT_EXCHANGE = "amq.default"
"""The name RabbitMQ checks a publish to the default exchange (`""`) against."""
PROVIDER_ID = "<provider_id>"
"""Stands for any provider id in the resource names of the table."""
ANY_ROUTING_KEY = "<any routing key>"
_PLACEHOLDERS = {PROVIDER_ID: "[a-z0-9][a-z0-9-]*", ANY_ROUTING_KEY: ".*"}
STAFF_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
STAFF_PREFIX = "staff-"
WEBSHOP = "webshop"

Kind = Literal["service", "web shop", "staff", "provider"]


@dataclass(frozen=True)
class Permissions:
    """A RabbitMQ user's rights in one virtual host: regular expressions over resource names."""

    configure: str
    write: str
    read: str


@dataclass(frozen=True)
class TopicPermissions:
    """A user's routing keys on one topic exchange: publishing (write) and binding (read)."""

    exchange: str
    write: str
    read: str


@dataclass(frozen=True)
class Binding:
    """A queue bound to an exchange with one routing key."""

    exchange: str
    queue: str
    routing_key: str


@dataclass(frozen=True)
class Topology:
    """Exchanges, queues and bindings to declare, in that order."""

    exchanges: tuple[RabbitExchange, ...]
    queues: tuple[RabbitQueue, ...]
    bindings: tuple[Binding, ...]


@dataclass(frozen=True)
class ServiceRole:
    """What a service does on the broker beyond what every service does.

    `consumes`: its queues, each bound to its exchange (the runtime commands' queue, which every
    service has, comes on top): adding a queue to a service is adding it here, and
    tests/unit/test_permissions.py fails until the routers and this table agree.
    `publishes`: exchanges it publishes to (it declares them too), besides dead-letter and the
    replies to commands. `provides`: queues it declares and binds for others to consume.
    `events`: the routing keys it publishes on `register.events`, the only ones RabbitMQ lets it.
    """

    consumes: tuple[Subscription, ...]
    publishes: tuple[RabbitExchange, ...] = ()
    provides: tuple[Subscription, ...] = ()
    events: tuple[str, ...] = ()
    note: str = ""


SERVICE_ROLES: dict[str, ServiceRole] = {
    "orders": ServiceRole(
        consumes=(
            topology.order_placed_subscription("orders"),
            topology.erase_subject_subscription("orders"),
            topology.person_lookup_subscription(),
            topology.ops_subscription("orders"),
        ),
        publishes=(topology.register_events_exchange(),),
        events=(topology.ERASURE_REPORTED,),
        note=(
            f"Answers for `{topology.UNROUTABLE_QUEUE}`: reads it, and replays its messages to "
            f"`{topology.WEBSHOP_EXCHANGE}` under any routing key. Reports its part of an erasure "
            f"on `{topology.REGISTER_EVENTS_EXCHANGE}`."
        ),
    ),
    "consent": ServiceRole(
        consumes=(
            topology.order_placed_subscription("consent"),
            topology.webshop_subscription("consent", topology.CONSENT_UPDATED),
            topology.webshop_subscription("consent", topology.MARKETING_OBJECTION),
            topology.erase_subject_subscription("consent"),
            topology.ops_subscription("consent"),
            topology.ops_stream_subscription("consent"),
        ),
        publishes=(topology.register_events_exchange(),),
        events=(topology.CONSENT_CHANGED, topology.ERASURE_REPORTED),
        note="Publishes `consent.changed` and its erasure reports on the internal exchange.",
    ),
    "disclosure": ServiceRole(
        consumes=(
            topology.order_placed_subscription("disclosure"),
            topology.erase_subject_subscription("disclosure"),
            topology.ops_subscription("disclosure"),
        ),
        publishes=(topology.disclosures_exchange(), topology.register_events_exchange()),
        events=(topology.ERASURE_REPORTED,),
        provides=(
            Subscription(
                topology.provider_queue_name(PROVIDER_ID),
                topology.disclosures_exchange(),
                PROVIDER_ID,
            ),
        ),
        note=(
            "Sends each provider its disclosures and erasure notices. Declares each provider's "
            "queue when the provider is registered (and again at start), bound to `disclosures`, "
            "so that its data can wait; RabbitMQ asks for read on a queue it creates with a "
            "dead-letter exchange, so it may read them too. It declares the provider's "
            "dead-letter queue, but `rekisteri providers credentials` binds it to `dead-letter`: "
            "read on that exchange would let the service bind a queue of its own to any "
            "service's dead letters."
        ),
    ),
    "erasure": ServiceRole(
        consumes=(
            topology.erasure_requested_subscription(),
            topology.erasure_reported_subscription(),
            topology.ops_subscription("erasure"),
        ),
        publishes=(topology.register_events_exchange(),),
        events=(
            *map(topology.erase_subject_routing_key, topology.ERASURE_PARTICIPANTS),
            topology.PERSON_LOOKUP,
        ),
        note=(
            "Asks each service to erase a person (`erase.subject.<service>`) and collects "
            f"reports; asks the orders service who is on an order (`{topology.PERSON_LOOKUP}`, "
            "answered over direct reply-to, which needs no right)."
        ),
    ),
}


@dataclass(frozen=True)
class Party:
    """One identity on the broker and the resources it may configure, write and read."""

    name: str
    """Its RabbitMQ user, after the deployment's user prefix (providers: their own prefix)."""
    kind: Kind
    reason: str
    configure: frozenset[str] = frozenset()
    write: frozenset[str] = frozenset()
    read: frozenset[str] = frozenset()
    topic_write: frozenset[tuple[str, str]] = frozenset()
    """(topic exchange, routing key) it may publish with, on the exchanges named here or in
    `topic_read`; on a topic exchange named in neither, any key."""
    topic_read: frozenset[tuple[str, str]] = frozenset()
    """(topic exchange, binding key) it may bind a queue with."""

    @property
    def permissions(self) -> Permissions:
        return Permissions(_regex(self.configure), _regex(self.write), _regex(self.read))

    @property
    def topic_permissions(self) -> list[TopicPermissions]:
        exchanges = sorted({exchange for exchange, _ in self.topic_write | self.topic_read})
        return [
            TopicPermissions(
                exchange,
                _regex(key for on, key in self.topic_write if on == exchange),
                _regex(key for on, key in self.topic_read if on == exchange),
            )
            for exchange in exchanges
        ]


def _pattern(name: str) -> str:
    parts = re.split(f"({'|'.join(map(re.escape, _PLACEHOLDERS))})", name)
    return "".join(_PLACEHOLDERS.get(part) or re.escape(part) for part in parts)


def _regex(names: Iterable[str]) -> str:
    """Exactly these names (`^$`, which matches no resource, for none)."""
    patterns = sorted(_pattern(name) for name in names)
    if not patterns:
        return "^$"
    return f"^{patterns[0]}$" if len(patterns) == 1 else f"^({'|'.join(patterns)})$"


class _Rights:
    """Collects the rights the broker checks for each operation (see the module docstring)."""

    def __init__(self) -> None:
        self.configure: set[str] = set()
        self.write: set[str] = set()
        self.read: set[str] = set()
        self.topic_write: set[tuple[str, str]] = set()
        self.topic_read: set[tuple[str, str]] = set()

    def declare_queue(self, queue: RabbitQueue) -> None:
        self.configure.add(queue.name)
        dead_letters = (queue.arguments or {}).get("x-dead-letter-exchange")
        if dead_letters:
            self.read.add(queue.name)
            self.write.add(dead_letters)

    def bind(self, subscription: Subscription) -> None:
        """Bind the subscription's queue to its exchange with its routing key."""
        self.write.add(subscription.queue_name)
        self.read.add(subscription.exchange.name)
        if subscription.exchange.type == ExchangeType.TOPIC:
            self.topic_read.add((subscription.exchange.name, subscription.routing_key))

    def party(self, name: str, kind: Kind, reason: str) -> Party:
        return Party(
            name,
            kind,
            reason,
            frozenset(self.configure),
            frozenset(self.write),
            frozenset(self.read),
            frozenset(self.topic_write),
            frozenset(self.topic_read),
        )


def _dead_lettering(subscription: Subscription) -> bool:
    arguments = subscription.queue.arguments or {}
    return arguments.get("x-dead-letter-exchange") == topology.DEAD_LETTER_EXCHANGE


def service_subscriptions(service: str) -> tuple[Subscription, ...]:
    """Every queue the service consumes: its own, and the runtime commands' queue."""
    return (*SERVICE_ROLES[service].consumes, topology.runtime_subscription(service))


def service_party(service: str) -> Party:
    role = SERVICE_ROLES[service]
    rights = _Rights()
    consumed = service_subscriptions(service)
    # Its queues are declared and bound before it starts (`register_topology`): it finds them
    # with passive declares, which need no right, and reads them.
    rights.read.update(subscription.queue_name for subscription in consumed)
    # shared/messaging.py dead-letters what it cannot handle; shared/dead_letters.py lists,
    # purges and replays its own dead letters (replay: to the source queue by name).
    # An erasure also takes the person's messages out of the dead letters of the queues it
    # provides for others (the disclosure service: the providers' queues).
    for subscription in filter(_dead_lettering, (*consumed, *role.provides)):
        rights.write.add(topology.DEAD_LETTER_EXCHANGE)
        rights.read.add(topology.dead_letter_queue(subscription.queue_name).name)
    if service == topology.UNROUTABLE_QUEUE_OWNER:
        rights.read.add(topology.UNROUTABLE_QUEUE)
        rights.write.add(topology.WEBSHOP_EXCHANGE)
        rights.topic_write.add((topology.WEBSHOP_EXCHANGE, ANY_ROUTING_KEY))
    # Replies to `rekisteri` go to its direct reply-to address through the default exchange.
    rights.write.add(DEFAULT_EXCHANGE)
    rights.write.update(exchange.name for exchange in role.publishes)
    rights.topic_write.update((topology.REGISTER_EVENTS_EXCHANGE, key) for key in role.events)
    # Queues it declares for others while it runs, one per provider: provisioning cannot know
    # them. Binding one takes read on its exchange (`disclosures`, which it sends to anyway).
    for subscription in role.provides:
        rights.declare_queue(subscription.queue)
        rights.bind(subscription)
        if _dead_lettering(subscription):
            rights.declare_queue(topology.dead_letter_queue(subscription.queue_name))
    dead_lettering = any(map(_dead_lettering, consumed))
    reasons = [
        "Finds its queues as `rekisteri rabbitmq provision` declared and bound them (a passive "
        "declare needs no right) and consumes them. It declares nothing provisioning declared, "
        "and has no read right on `ops`, `webshop`, `register.events` or `dead-letter`, which "
        "binding a queue to them takes.",
        "Dead-letters what it cannot handle; lists, replays and purges its own dead letters."
        if dead_lettering
        else "",
        f"Answers commands through `{DEFAULT_EXCHANGE}` (direct reply-to).",
        role.note,
        "On the topic exchanges it publishes on, only the routing keys listed (topic permissions).",
    ]
    return rights.party(service, "service", " ".join(filter(None, reasons)))


class _Plan:
    """Collects a topology: each exchange and queue once, in the order first met."""

    def __init__(self) -> None:
        self.exchanges: dict[str, RabbitExchange] = {}
        self.queues: dict[str, RabbitQueue] = {}
        self.bindings: dict[Binding, None] = {}

    def exchange(self, exchange: RabbitExchange) -> None:
        self.exchanges.setdefault(exchange.name, exchange)

    def queue(self, queue: RabbitQueue, bound_to: str, routing_key: str) -> None:
        self.queues.setdefault(queue.name, queue)
        self.bindings[Binding(bound_to, queue.name, routing_key)] = None

    def subscription(self, subscription: Subscription) -> None:
        """The queue bound to its exchange, and, for a dead-lettering queue, its dead letters'."""
        self.exchange(subscription.exchange)
        self.queue(subscription.queue, subscription.exchange.name, subscription.routing_key)
        if _dead_lettering(subscription):
            self.exchange(topology.dead_letter_exchange())
            self.queue(
                topology.dead_letter_queue(subscription.queue_name),
                topology.DEAD_LETTER_EXCHANGE,
                subscription.queue_name,
            )

    def topology(self) -> Topology:
        return Topology(
            tuple(self.exchanges.values()), tuple(self.queues.values()), tuple(self.bindings)
        )


def register_topology() -> Topology:
    """Every exchange, queue and binding of the register but the providers' queues.

    `rekisteri rabbitmq provision` declares it, once, as the administrator; a service logged
    in as its own user finds its part of it at start (shared/runtime.py). In development a
    service logged in as `guest` declares its own part itself instead.
    """
    plan = _Plan()
    plan.exchange(topology.dead_letter_exchange())
    plan.exchange(topology.webshop_unroutable_exchange())
    # aio-pika binds with the queue's name when given no key; on a fanout exchange it is moot.
    plan.queue(
        topology.unroutable_queue(), topology.WEBSHOP_UNROUTABLE_EXCHANGE, topology.UNROUTABLE_QUEUE
    )
    for service in topology.SERVICES:
        for exchange in SERVICE_ROLES[service].publishes:
            plan.exchange(exchange)
        for subscription in service_subscriptions(service):
            plan.subscription(subscription)
    return plan.topology()


def provider_topology(provider_id: str) -> Topology:
    """A provider's queue bound to `disclosures`, and its dead letters' bound to `dead-letter`:
    what `rekisteri providers credentials` declares, as the administrator, before the provider
    can consume (and so reject) anything. The disclosure service declares all of it but the
    last binding when the provider is registered."""
    plan = _Plan()
    plan.subscription(
        Subscription(
            topology.provider_queue_name(provider_id), topology.disclosures_exchange(), provider_id
        )
    )
    return plan.topology()


def webshop_party() -> Party:
    return Party(
        WEBSHOP,
        "web shop",
        f"Publishes its events to `{topology.WEBSHOP_EXCHANGE}`; the register declares it, and "
        "the web shop declares, binds and reads nothing.",
        write=frozenset({topology.WEBSHOP_EXCHANGE}),
    )


def staff_user(name: str) -> str:
    if not STAFF_NAME.match(name):
        raise ValueError(
            f"a staff name is 1-32 lower-case letters, digits and dashes, starting with a "
            f"letter: {name!r}"
        )
    return STAFF_PREFIX + name


def staff_party(name: str) -> Party:
    return _staff_party(staff_user(name))


def _staff_party(user: str) -> Party:
    return Party(
        user,
        "staff",
        f"Sends `rekisteri` commands to `{topology.OPS_EXCHANGE}` under its own user id; the "
        "replies come back over direct reply-to, which needs no right. Reads no queue. The "
        "services carry out commands only for staff users (`staff-<name>`).",
        write=frozenset({topology.OPS_EXCHANGE}),
    )


def provider_party(provider_id: str) -> Party:
    return Party(
        provider_id,
        "provider",
        "Reads its own queue; declares, binds, publishes and reads nothing else.",
        read=frozenset({topology.provider_queue_name(provider_id)}),
    )


def provisioned_parties(staff: Iterable[str] = ()) -> list[Party]:
    """The parties `rekisteri rabbitmq provision` makes users for."""
    return [
        *(service_party(service) for service in topology.SERVICES),
        webshop_party(),
        *(staff_party(name) for name in staff),
    ]


def parties() -> list[Party]:
    """The whole table, with placeholders for staff members and providers."""
    return [
        *(service_party(service) for service in topology.SERVICES),
        webshop_party(),
        _staff_party(STAFF_PREFIX + "<name>"),
        provider_party(PROVIDER_ID),
    ]


def password_variable(party: str) -> str:
    """Where `rekisteri rabbitmq provision` reads a party's password: RABBITMQ_PASSWORD_ORDERS."""
    return "RABBITMQ_PASSWORD_" + re.sub(r"[^A-Z0-9]", "_", party.upper())
