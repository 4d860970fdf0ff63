"""Raw-topic ingress: records of `iam.raw.<source>` are ingested exactly like hook bodies.

Used as the `process` callback of a `ConsumerLoop`: malformed input is dead-lettered here (to the
grants dead-letter topic, like every other ingress), and broker or database outages propagate so the
loop retries without losing the record's place.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiokafka import ConsumerRecord

from connectors.envelopes import MalformedBody, body_records
from connectors.ingest_records import IngestRecords, Origin


class RawTopicProcessor:
    def __init__(self, ingest: IngestRecords, sources_by_topic: Mapping[str, str]) -> None:
        self._ingest = ingest
        self._sources_by_topic = dict(sources_by_topic)

    @property
    def topics(self) -> list[str]:
        return sorted(self._sources_by_topic)

    async def __call__(self, record: ConsumerRecord[bytes, bytes]) -> None:
        source = self._sources_by_topic[record.topic]
        origin = Origin(
            kind="kafka",
            detail=record.topic,
            partition=record.partition,
            offset=record.offset,
            headers=tuple(record.headers or ()),
        )
        if record.value is None:
            await self._ingest.reject_body(source, b"", "record has no value (tombstone)", origin)
            return
        try:
            records = body_records(self._ingest.connector(source), record.value)
        except MalformedBody as exc:
            await self._ingest.reject_body(source, record.value, exc.reason, origin)
            return
        if len(records) == 1:
            origin = Origin(
                kind=origin.kind,
                detail=origin.detail,
                partition=origin.partition,
                offset=origin.offset,
                headers=origin.headers,
                raw=record.value,
            )
        await self._ingest(source, records, origin)
