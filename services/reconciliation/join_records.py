"""The internal join topic's records: inputs re-keyed by principal, snapshot marker copies, deadline ticks.

Forwarded inputs keep their original bytes and headers; `cl_*` headers say what the record is and where it
came from (so a record that fails in the join can be dead-lettered to its original topic's DLQ).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from closeloop.contracts.base import Envelope
from closeloop.contracts.codec import DecodeError, decode
from reconciliation.join_engine import JoinInput

KIND = "cl_kind"
ORIGIN_TOPIC = "cl_origin_topic"
ORIGIN_PARTITION = "cl_origin_partition"
ORIGIN_OFFSET = "cl_origin_offset"
KINDS = ("event", "marker", "person", "tick", "progress", "watch")

Headers = list[tuple[str, bytes]]


def normalise_headers(headers: Mapping[str, bytes] | Iterable[tuple[str, bytes]] | None) -> Headers:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return [(k, v) for k, v in headers.items() if v is not None]
    return [(k, v) for k, v in headers if v is not None]


def header(headers: Headers, name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode(errors="replace")
    return None


def forward_headers(kind: str, topic: str, partition: int, offset: int, original: Headers) -> Headers:
    own = [
        (KIND, kind.encode()),
        (ORIGIN_TOPIC, topic.encode()),
        (ORIGIN_PARTITION, str(partition).encode()),
        (ORIGIN_OFFSET, str(offset).encode()),
    ]
    return own + [(k, v) for k, v in original if not k.startswith("cl_")]


@dataclass(frozen=True)
class Incoming:
    """One consumed record, whether faust delivered it or the hole reader fetched it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers

    @classmethod
    def of(cls, message: Any) -> Incoming:
        """From a faust Message or an aiokafka ConsumerRecord (same attribute names)."""
        return cls(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key,
            value=message.value,
            headers=normalise_headers(message.headers),
        )


def tick_record(keys: list[str]) -> tuple[bytes, Headers]:
    """One tick for every due key of a partition (the timer sends one per partition and round)."""
    return json.dumps({"keys": keys}).encode(), [(KIND, b"tick")]


def watch_record() -> tuple[bytes, Headers]:
    """Asks the partition that judges INPUT_STALLED to look at the input watermarks."""
    return b"{}", [(KIND, b"watch")]


class BadJoinRecord(ValueError):
    """A join-topic record that cannot be turned into an input (dead-lettered with this reason)."""


def decode_join_record(value: bytes | None, headers: Headers, partition: int) -> JoinInput:
    kind = header(headers, KIND)
    if kind not in KINDS:
        raise BadJoinRecord(f"unknown join record kind {kind!r}")
    if kind == "watch":
        return JoinInput(kind="watch", partition=partition)
    if kind == "tick":
        try:
            keys = json.loads(value or b"")["keys"]
        except (ValueError, KeyError, TypeError) as exc:
            raise BadJoinRecord(f"bad tick: {exc}") from exc
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise BadJoinRecord("bad tick: keys must be a list of strings")
        return JoinInput(kind="tick", partition=partition, tick_keys=tuple(keys))
    try:
        event: Envelope = decode(value)
    except DecodeError as exc:
        raise BadJoinRecord(exc.reason) from exc
    origin = header(headers, ORIGIN_PARTITION)
    return JoinInput(
        kind=kind,
        partition=partition,
        event=event,
        origin_partition=int(origin) if origin and origin.lstrip("-").isdigit() else None,
    )
