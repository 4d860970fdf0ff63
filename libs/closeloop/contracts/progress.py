"""Stream progress (watermark) records, published in-band on a data topic's partitions by its producers.

Why in-band and not on a separate progress topic: a progress record means "everything this producer will
publish on this partition from now on came in after `watermark`". That promise is only useful to a consumer
that has read every data record published before it, and Kafka orders records within one partition only; a
record on the same partition, after the data it covers, gives that ordering for free. A separate topic would
need offsets of the data topic in every record and a consumer that lines the two up.

Consumers that do not care about progress skip it by its CloudEvents type header (`is_stream_progress`)
before decoding, the same way expiry skips grant events it does not use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from closeloop.contracts.base import Envelope


class StreamProgress(Envelope):
    """How far one producer has published on one partition of a data topic."""

    EVENT_TYPE: ClassVar[str] = "closeloop.stream.progress"
    SCHEMA_VERSION: ClassVar[int] = 1

    event_type: Literal["closeloop.stream.progress"] = Field(description="Always `closeloop.stream.progress`.")
    stream: str = Field(min_length=1, max_length=249, description="The data topic this record is on.")
    partition: int = Field(ge=0, le=100_000, description="The partition of the data topic this record is on.")
    producer: str = Field(
        min_length=1,
        max_length=200,
        description="Stable id of the producing instance (service and instance name); a consumer takes the "
        "lowest watermark over the producers it has heard of on a partition.",
    )
    watermark: AwareDatetime = Field(
        description="Every input that reached the producer (webhook received, raw record appended, vendor "
        "record read) before this time has been published on this partition, or earlier on it. It is the "
        "oldest receipt time still in flight, or `occurred_at` when nothing is."
    )
    in_flight: int = Field(default=0, ge=0, description="Inputs received but not yet published when this was sent.")
    backfill: bool = Field(
        default=False,
        description="The producer replays old records (`closeloop replay`): it holds the watermark at the oldest of "
        "them until it closes, and its lag is not a stalled input.",
    )
    closing: bool = Field(
        default=False,
        description="The producer stops publishing here (graceful shutdown, end of a replay): forget it instead "
        "of waiting for it.",
    )


def is_stream_progress(headers: Sequence[tuple[str, bytes]] | None) -> bool:
    """True for a progress record, judged by its CloudEvents type header (no decoding)."""
    wanted = StreamProgress.EVENT_TYPE.encode()
    return any(key == "ce_type" and value == wanted for key, value in headers or ())
