"""Every exchange, queue and routing key of the register, as FastStream declares them.

The web shop and the providers code against the public names (`webshop`, `order.placed`,
`consent.updated`, `marketing.objection`, `erasure.requested`, `disclosures`,
`disclosures.<provider_id>`); the rest is internal. Every queue a service
consumes is a durable quorum queue that dead-letters to `dead-letter` under its own name, so
a message that cannot be handled ends up in `dead-letter.<queue>` with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from faststream.rabbit import ExchangeType, QueueType, RabbitExchange, RabbitQueue

# The names live in `shared.topology_names` (importable without FastStream); they are
# re-exported here, so code that builds the topology finds every name in one place.
from shared.topology_names import (  # noqa: F401
    CONSENT_CHANGED,
    CONSENT_UPDATED,
    DEAD_LETTER_EXCHANGE,
    DEAD_LETTER_QUEUE_PREFIX,
    DIRECT_REPLY_TO,
    DISCLOSURES_EXCHANGE,
    ERASE_SUBJECT,
    ERASURE_PARTICIPANTS,
    ERASURE_REPORTED,
    ERASURE_REQUESTED,
    MARKETING_OBJECTION,
    OPS_EXCHANGE,
    ORDER_PLACED,
    PERSON_LOOKUP,
    PROVIDER_QUEUE_PREFIX,
    REGISTER_EVENTS_EXCHANGE,
    SERVICES,
    UNROUTABLE_QUEUE,
    UNROUTABLE_QUEUE_OWNER,
    WEBSHOP_EXCHANGE,
    WEBSHOP_UNROUTABLE_EXCHANGE,
    erase_subject_routing_key,
    ops_runtime_routing_key,
    ops_stream_routing_key,
    provider_queue_name,
)

# A message is delivered at most this many times before the broker dead-letters it, so a
# handler that keeps failing cannot loop forever.
DELIVERY_LIMIT = 5


def exchange(name: str, kind: ExchangeType, **arguments: Any) -> RabbitExchange:
    return RabbitExchange(name, type=kind, durable=True, arguments=arguments or None)


def webshop_exchange() -> RabbitExchange:
    return exchange(
        WEBSHOP_EXCHANGE, ExchangeType.TOPIC, **{"alternate-exchange": WEBSHOP_UNROUTABLE_EXCHANGE}
    )


def webshop_unroutable_exchange() -> RabbitExchange:
    return exchange(WEBSHOP_UNROUTABLE_EXCHANGE, ExchangeType.FANOUT)


def disclosures_exchange() -> RabbitExchange:
    return exchange(DISCLOSURES_EXCHANGE, ExchangeType.DIRECT)


def ops_exchange() -> RabbitExchange:
    return exchange(OPS_EXCHANGE, ExchangeType.DIRECT)


def register_events_exchange() -> RabbitExchange:
    return exchange(REGISTER_EVENTS_EXCHANGE, ExchangeType.TOPIC)


def dead_letter_exchange() -> RabbitExchange:
    return exchange(DEAD_LETTER_EXCHANGE, ExchangeType.DIRECT)


def work_queue(name: str, routing_key: str = "") -> RabbitQueue:
    """A durable quorum queue whose failures go to `dead-letter.<name>`, never lost.

    At-least-once dead-lettering needs `reject-publish` overflow; the delivery limit bounds
    retries of a message whose handler keeps failing.
    """
    return RabbitQueue(
        name,
        queue_type=QueueType.QUORUM,
        durable=True,
        routing_key=routing_key or name,
        arguments={
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": name,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        },
    )


def dead_letter_queue(source_queue: str) -> RabbitQueue:
    name = DEAD_LETTER_QUEUE_PREFIX + source_queue
    return RabbitQueue(name, queue_type=QueueType.QUORUM, durable=True, routing_key=source_queue)


def unroutable_queue() -> RabbitQueue:
    return RabbitQueue(UNROUTABLE_QUEUE, queue_type=QueueType.QUORUM, durable=True)


def provider_queue(provider_id: str) -> RabbitQueue:
    """`disclosures.<provider_id>`: what one provider, and only it, consumes."""
    return work_queue(provider_queue_name(provider_id), routing_key=provider_id)


@dataclass(frozen=True)
class Subscription:
    """One queue a service consumes, bound to one exchange with one routing key."""

    queue_name: str
    exchange: RabbitExchange
    routing_key: str
    extra_exchanges: tuple[RabbitExchange, ...] = field(default=())

    @property
    def queue(self) -> RabbitQueue:
        return work_queue(self.queue_name, routing_key=self.routing_key)


def webshop_subscription(service: str, routing_key: str) -> Subscription:
    """`<service>.<routing key, dots as dashes>`: each service's own queue for one web shop event."""
    return Subscription(
        f"{service}.{routing_key.replace('.', '-')}", webshop_exchange(), routing_key
    )


def order_placed_subscription(service: str) -> Subscription:
    return webshop_subscription(service, ORDER_PLACED)


def erasure_requested_subscription() -> Subscription:
    return webshop_subscription("erasure", ERASURE_REQUESTED)


def erase_subject_subscription(service: str) -> Subscription:
    """`<service>.erase-subject`: the erasure service's requests to erase a person's slice.

    Bound with the service's own routing key, so a request sent again reaches only the
    services that have not reported yet.
    """
    return Subscription(
        f"{service}.erase-subject", register_events_exchange(), erase_subject_routing_key(service)
    )


def erasure_reported_subscription() -> Subscription:
    return Subscription("erasure.erasure-reported", register_events_exchange(), ERASURE_REPORTED)


def person_lookup_subscription() -> Subscription:
    """`orders.person-lookup`: the erasure service's questions who is on an order, each answered
    over direct reply-to (`shared.requests`)."""
    return Subscription("orders.person-lookup", register_events_exchange(), PERSON_LOOKUP)


def command_queue(name: str, routing_key: str) -> RabbitQueue:
    """A durable quorum queue for operators' commands, without dead-lettering.

    A command carries an expiration equal to the time its sender waits for the reply; one that
    expires unread (its service was down) is stale and is dropped, not kept as a failure.
    """
    return RabbitQueue(name, queue_type=QueueType.QUORUM, durable=True, routing_key=routing_key)


@dataclass(frozen=True)
class CommandSubscription(Subscription):
    @property
    def queue(self) -> RabbitQueue:
        return command_queue(self.queue_name, self.routing_key)


def ops_subscription(service: str) -> Subscription:
    return CommandSubscription(f"ops.{service}", ops_exchange(), service)


def ops_stream_subscription(service: str) -> Subscription:
    """`ops.<service>.stream`: commands answered in pages (`shared.commands.subscribe_streams`).

    A queue of its own because its consumer acknowledges and replies differently; two consumers
    on one queue would take turns at every kind of command.
    """
    return CommandSubscription(
        f"ops.{service}.stream", ops_exchange(), ops_stream_routing_key(service)
    )


def runtime_subscription(service: str) -> Subscription:
    """`ops.<service>.runtime`: status and dead-letter commands every service answers."""
    return CommandSubscription(
        f"ops.{service}.runtime", ops_exchange(), ops_runtime_routing_key(service)
    )
