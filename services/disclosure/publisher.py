"""The disclosure service's side of the `disclosures` exchange: provider queues and sending.

This is the only code in the register that publishes to `disclosures`, and it takes exactly one
order's disclosure for one provider, or one erasure notice (which carries no personal data) for
one provider: there is no way to send data in bulk.
"""

from __future__ import annotations

from collections.abc import Iterable

from faststream.rabbit import RabbitBroker

from shared import topology
from shared.contracts.disclosures import Disclosure, ErasureNotice
from shared.messaging import publish


class ProviderQueues:
    def __init__(self, broker: RabbitBroker) -> None:
        self._broker = broker

    async def declare(self, provider_id: str) -> None:
        """`disclosures.<provider_id>`, bound, so messages wait for a provider not yet connected."""
        exchange = await self._broker.declare_exchange(topology.disclosures_exchange())
        dead_letters = await self._broker.declare_exchange(topology.dead_letter_exchange())
        queue_name = topology.provider_queue_name(provider_id)
        queue = await self._broker.declare_queue(topology.provider_queue(provider_id))
        await queue.bind(exchange, routing_key=provider_id)
        dead_letter_queue = await self._broker.declare_queue(topology.dead_letter_queue(queue_name))
        await dead_letter_queue.bind(dead_letters, routing_key=queue_name)

    async def send(self, disclosure: Disclosure) -> None:
        await publish(
            self._broker,
            disclosure,
            exchange=topology.disclosures_exchange(),
            routing_key=disclosure.provider_id,
            message_id=str(disclosure.disclosure_id),
            message_type=disclosure.type,
        )

    async def send_erasure_notice(self, provider_id: str, notice: ErasureNotice) -> None:
        await publish(
            self._broker,
            notice,
            exchange=topology.disclosures_exchange(),
            routing_key=provider_id,
            message_id=str(notice.notice_id),
            message_type=notice.type,
        )

    def queue_names(self, provider_ids: Iterable[str]) -> list[str]:
        """The providers' queues, whose dead letters (a disclosure a provider rejected) this
        service answers for."""
        return [topology.provider_queue_name(provider_id) for provider_id in provider_ids]
