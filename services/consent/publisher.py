"""The consent service's side of `register.events`: announcing consent changes."""

from __future__ import annotations

from faststream.rabbit import RabbitBroker

from shared import topology
from shared.contracts.consent import ConsentChanged
from shared.messaging import publish


class ConsentEvents:
    def __init__(self, broker: RabbitBroker) -> None:
        self._broker = broker

    async def changed(self, event: ConsentChanged) -> None:
        """Publish `consent.changed`, confirmed; dropped by the broker while nobody is bound.

        The exchange is declared on first use (the broker client remembers it), so the first
        message handled after a start finds it whatever the start order.
        """
        exchange = topology.register_events_exchange()
        await self._broker.declare_exchange(exchange)
        await publish(
            self._broker,
            event,
            exchange=exchange,
            routing_key=topology.CONSENT_CHANGED,
            message_id=f"{event.subject}:{event.version}",
            message_type=topology.CONSENT_CHANGED,
            mandatory=False,
        )
