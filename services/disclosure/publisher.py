"""The disclosure service's side of the `disclosures` exchange: provider queues and sending.

This is the only code in the register that publishes to `disclosures`, and it takes exactly one
order's disclosure for one provider, or one erasure notice (which carries no personal data) for
one provider: there is no way to send data in bulk.
"""

from __future__ import annotations

from collections.abc import Iterable

from aio_pika import RobustExchange
from faststream.rabbit import RabbitBroker, RabbitExchange
from pydantic import BaseModel

from shared import topology
from shared.contracts.disclosures import Disclosure, ErasureNotice
from shared.messaging import Publication
from shared.runtime import found

PROVIDER_ID = "{provider_id}"
"""The routing key a disclosure travels by, as the AsyncAPI document names it."""


class ProviderQueues:
    def __init__(self, broker: RabbitBroker, *, provisioned: bool) -> None:
        """`provisioned`: the exchanges were declared by `rekisteri rabbitmq provision` and this
        service may not declare them, nor bind a provider's dead-letter queue to `dead-letter`
        (`rekisteri providers credentials` does that, shared/permissions.py). Otherwise
        (development's guest) it declares and binds all of it itself."""
        self._broker = broker
        self._provisioned = provisioned
        self._disclosures = self._to_providers(
            broker,
            Disclosure,
            "disclosures.disclosure",
            "One order's data for one provider, with the provider's id as routing key, to the "
            "provider's own queue `disclosures.<provider_id>`. The AMQP `message_id` is the "
            "`disclosure_id`.",
        )
        self._erasure_notices = self._to_providers(
            broker,
            ErasureNotice,
            "disclosures.erasure-notice",
            "When a person whose data a provider received is erased: which of its orders to erase "
            "(GDPR Art. 19), to the same queue as its disclosures, before the service reports its "
            "part done. The AMQP `message_id` is the `notice_id`.",
        )

    @staticmethod
    def _to_providers(
        broker: RabbitBroker, schema: type[BaseModel], title: str, description: str
    ) -> Publication:
        """To `disclosures`, routed by the provider's id to its queue alone."""
        return Publication(
            broker,
            exchange=topology.disclosures_exchange(),
            routing_key=PROVIDER_ID,
            schema=schema,
            title=title,
            description=description,
        )

    async def declare(self, provider_id: str) -> None:
        """`disclosures.<provider_id>`, bound, so messages wait for a provider not yet connected,
        and the queue of its dead letters."""
        exchange = await self._exchange(topology.disclosures_exchange())
        queue_name = topology.provider_queue_name(provider_id)
        queue = await self._broker.declare_queue(topology.provider_queue(provider_id))
        await queue.bind(exchange, routing_key=provider_id)
        dead_letter_queue = await self._broker.declare_queue(topology.dead_letter_queue(queue_name))
        if not self._provisioned:
            dead_letters = await self._exchange(topology.dead_letter_exchange())
            await dead_letter_queue.bind(dead_letters, routing_key=queue_name)

    async def _exchange(self, exchange: RabbitExchange) -> RobustExchange:
        return await self._broker.declare_exchange(
            found(exchange) if self._provisioned else exchange
        )

    async def send(self, disclosure: Disclosure) -> None:
        await self._disclosures.publish(
            disclosure,
            routing_key=disclosure.provider_id,
            message_id=str(disclosure.disclosure_id),
            message_type=disclosure.type,
        )

    async def send_erasure_notice(self, provider_id: str, notice: ErasureNotice) -> None:
        await self._erasure_notices.publish(
            notice,
            routing_key=provider_id,
            message_id=str(notice.notice_id),
            message_type=notice.type,
        )

    def queue_names(self, provider_ids: Iterable[str]) -> list[str]:
        """The providers' queues, whose dead letters (a disclosure a provider rejected) this
        service answers for."""
        return [topology.provider_queue_name(provider_id) for provider_id in provider_ids]
