"""The consent service's side of `register.events`: announcing consent changes."""

from __future__ import annotations

from faststream.rabbit import RabbitBroker

from shared import topology
from shared.contracts.consent import ConsentChanged
from shared.messaging import service_event


class ConsentEvents:
    def __init__(self, broker: RabbitBroker) -> None:
        self._broker = broker
        self._changed = service_event(
            broker,
            topology.CONSENT_CHANGED,
            ConsentChanged,
            "A person's consent summary, named by subject hash only, whenever it changes: after "
            "the change is stored and before the event that caused it is acknowledged, with AMQP "
            "`message_id` `<subject>:<version>`. A service that needs it binds a queue of its "
            "own; until one does, the broker drops the message.",
            mandatory=False,
        )

    async def changed(self, event: ConsentChanged) -> None:
        """Publish `consent.changed`, confirmed; dropped by the broker while nobody is bound.

        The exchange is provisioned (`rekisteri rabbitmq provision`; `make dev` declares it),
        so the first message handled after a start finds it whatever the start order.
        """
        await self._broker.declare_exchange(topology.register_events_exchange())
        await self._changed.publish(
            event,
            message_id=f"{event.subject}:{event.version}",
            message_type=topology.CONSENT_CHANGED,
        )
