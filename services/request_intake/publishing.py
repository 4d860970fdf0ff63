"""Kafka side of the intake: publish a ticket event and wait for acks=all."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer

from closeloop.contracts.codec import cloudevents_headers, encode
from closeloop.contracts.tickets import TicketEvent


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
