"""The names of the register's exchanges, queues and routing keys, as plain strings.

`shared.topology` builds FastStream's exchange and queue objects from these names. This module
imports nothing, so that what only needs a name (the `rekisteri` tool sending a command) does
not pay for importing FastStream.
"""

from __future__ import annotations

SERVICES = ("orders", "consent", "disclosure", "erasure")
"""The register's services; each is also the routing key of its commands on `ops`."""
ERASURE_PARTICIPANTS = ("orders", "consent", "disclosure")
"""The services that hold personal data and erase their slice when the erasure service asks."""

# --- exchanges -------------------------------------------------------------------------------

WEBSHOP_EXCHANGE = "webshop"
"""Topic exchange the web shop publishes to."""
WEBSHOP_UNROUTABLE_EXCHANGE = "webshop.unroutable"
"""Alternate exchange of `webshop`: catches messages with routing keys nobody consumes."""
DISCLOSURES_EXCHANGE = "disclosures"
"""Direct exchange; routing key = provider id."""
OPS_EXCHANGE = "ops"
"""Direct exchange for the `rekisteri` tool's commands; routing key = service name."""
DEAD_LETTER_EXCHANGE = "dead-letter"
"""Direct exchange; routing key = the queue the message was taken from."""
REGISTER_EVENTS_EXCHANGE = "register.events"
"""Topic exchange for events between the register's services; routing key = event type."""
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
"""RabbitMQ's pseudo-queue through which the services answer `rekisteri`'s commands."""

# --- routing keys ----------------------------------------------------------------------------

ORDER_PLACED = "order.placed"
CONSENT_UPDATED = "consent.updated"
MARKETING_OBJECTION = "marketing.objection"
CONSENT_CHANGED = "consent.changed"
ERASURE_REQUESTED = "erasure.requested"
ERASE_SUBJECT = "erase.subject"
"""Prefix: the erasure service addresses each participant as `erase.subject.<service>`."""
ERASURE_REPORTED = "erasure.reported"
PERSON_LOOKUP = "person.lookup"
"""The erasure service asks the orders service who is on an order, and waits for the answer."""

# --- queues ----------------------------------------------------------------------------------

DEAD_LETTER_QUEUE_PREFIX = "dead-letter."
PROVIDER_QUEUE_PREFIX = "disclosures."
UNROUTABLE_QUEUE = DEAD_LETTER_QUEUE_PREFIX + WEBSHOP_EXCHANGE + ".unroutable"
UNROUTABLE_QUEUE_OWNER = "orders"
"""The service that answers operators for the unroutable catch-all (every service declares it)."""


def provider_queue_name(provider_id: str) -> str:
    """`disclosures.<provider_id>`: what one provider, and only it, consumes."""
    return PROVIDER_QUEUE_PREFIX + provider_id


def erase_subject_routing_key(service: str) -> str:
    return f"{ERASE_SUBJECT}.{service}"


def ops_stream_routing_key(service: str) -> str:
    """On `ops`: the service's commands answered in pages."""
    return f"{service}.stream"


RUNTIME_SUFFIX = ".runtime"


def ops_runtime_routing_key(service: str) -> str:
    """On `ops`: the status and dead-letter commands every service answers."""
    return service + RUNTIME_SUFFIX
