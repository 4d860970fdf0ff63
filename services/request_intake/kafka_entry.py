"""Kafka ingress: raw vendor records on `itsm.raw.servicenow` / `itsm.raw.jira`, for publishers that write
to Kafka directly. Same normalization, same handler, same dead-letter topic as the webhooks; run by
`closeloop.consumer_loop.ConsumerLoop` (offsets committed after the effect, transient errors retried)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiokafka import ConsumerRecord

from closeloop.consumer_loop import BadInput
from closeloop.untrusted import UntrustedInput, load_json
from request_intake.ingest_ticket import IngestTicket
from request_intake.problems import Invalid, Unmappable


class RawTicketRecords:
    """The ConsumerLoop record processor: decode, hand to the shared handler; BadInput dead-letters."""

    def __init__(self, ingest: IngestTicket, topics: Mapping[str, str]) -> None:
        self._ingest = ingest
        self._topics = dict(topics)  # raw topic -> ITSM system

    async def __call__(self, record: ConsumerRecord[bytes, bytes]) -> None:
        system = self._topics.get(record.topic)
        if system is None:
            raise BadInput(f"{record.topic} is not a raw ITSM topic of this service", "unknown_topic")
        if record.value is None:
            raise BadInput("invalid_json: <body>: the record has no value", "invalid_json")
        try:
            payload: Any = load_json(record.value)
        except UntrustedInput as exc:
            raise BadInput(f"invalid_json: <body>: the body {exc.reason}", "invalid_json") from exc
        try:
            items = self._ingest.normalize(system, payload)
        except Unmappable as exc:
            raise BadInput(f"unmappable: {exc.describe()}", "unmappable") from exc
        await self._ingest.apply(items, record.topic)
        invalid = [item.problem for item in items if isinstance(item, Invalid)]
        if invalid:  # the sound records are published; the record is dead-lettered for the others
            raise BadInput(f"unmappable: {Unmappable.joined(invalid).describe()}", "unmappable")
