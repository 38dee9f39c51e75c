"""The erasure service's side of `register.events`: asking a participant to erase a person,
and asking the orders service who is on an order."""

from __future__ import annotations

import logging

from aio_pika.exceptions import DeliveryError
from faststream.rabbit import RabbitBroker

from shared import topology
from shared.contracts.erasure import EraseSubject, OrderPerson
from shared.contracts.orders import LookupPerson, PersonOnOrder
from shared.messaging import service_event
from shared.requests import ask

log = logging.getLogger(__name__)

LOOKUP_TIMEOUT_SECONDS = 5.0
"""How long the erasure service waits for the orders service to say who is on an order."""


class Participants:
    def __init__(self, broker: RabbitBroker) -> None:
        self._erase_subject = {
            service: service_event(
                broker,
                topology.erase_subject_routing_key(service),
                EraseSubject,
                f"Asks the {service} service to erase a person, named by subject hash only, with "
                "AMQP `message_id` `<request_id>:<service>`. A service that has not reported is "
                "asked again, with back-off.",
            )
            for service in topology.ERASURE_PARTICIPANTS
        }
        self._person_lookup = service_event(
            broker,
            topology.PERSON_LOOKUP,
            LookupPerson,
            "Asks the orders service who is on an order, when an erasure names a person by an "
            "order, with RabbitMQ's direct reply-to as `reply_to` and a fresh `correlation_id`; "
            "not persistent. Without an answer within a few seconds the erasure's handler fails, "
            "and its message is retried after a back-off.",
            persist=False,
        )

    async def ask_to_erase(self, service: str, command: EraseSubject) -> bool:
        """Put the request in the service's queue, where it waits if the service is down.

        False when the service has no queue yet (it has never run on this broker): the request
        then stays open and is asked again later.
        """
        try:
            await self._erase_subject[service].publish(
                command,
                message_id=f"{command.request_id}:{service}",
                message_type=topology.ERASE_SUBJECT,
            )
        except DeliveryError:
            log.warning(
                "a participant has no queue for erasures yet",
                extra={
                    "queue": topology.erase_subject_subscription(service).queue_name,
                    "request_id": command.request_id,
                },
            )
            return False
        return True

    async def person_on_order(self, person: OrderPerson) -> PersonOnOrder:
        """Who is in that role on that order, as the orders service (which alone knows) says;
        `shared.requests.NoAnswer` if it does not say in time."""
        return await ask(
            self._person_lookup,
            LookupPerson(order_id=person.order_id, role=person.role),
            PersonOnOrder,
            seconds=LOOKUP_TIMEOUT_SECONDS,
        )
