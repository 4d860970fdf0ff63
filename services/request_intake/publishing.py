"""Kafka side of the intake: publish a ticket event and wait for acks=all; route dead letters."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer

from closeloop.contracts.codec import cloudevents_headers, encode
from closeloop.contracts.tickets import TicketEvent
from closeloop.dead_letter import DeadLetter, DeadLetterPublisher


class KafkaTicketPublisher:
    """Publishes to the tickets topic; returns only once the broker has the record durably."""

    def __init__(self, producer: AIOKafkaProducer, topic: str, timeout_s: float) -> None:
        self._producer = producer
        self._timeout_s = timeout_s
        self.topic = topic

    async def publish(self, event: TicketEvent, key: bytes) -> None:
        await asyncio.wait_for(
            self._producer.send_and_wait(self.topic, encode(event), key=key, headers=cloudevents_headers(event)),
            self._timeout_s,
        )


class RoutedDeadLetters(DeadLetterPublisher):
    """Every payload the intake cannot map lands on one dead-letter topic, whichever ingress it came by.

    The letter keeps where it came from (`dlq_source`: webhook or kafka; `dlq_source_topic`: the raw topic
    for Kafka records), so an operator can replay it to the right place after fixing the mapping.
    """

    def __init__(self, producer: AIOKafkaProducer, service: str, topic: str, timeout_s: float) -> None:
        super().__init__(producer, service)
        self._kafka = producer
        self._name = service
        self._timeout_s = timeout_s
        self.topic = topic

    async def send(self, letter: DeadLetter) -> None:
        await asyncio.wait_for(
            self._kafka.send_and_wait(self.topic, letter.value, key=letter.key, headers=letter.headers(self._name)),
            self._timeout_s,
        )
