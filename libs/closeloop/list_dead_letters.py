"""Read the letters of a dead-letter topic, optionally narrowed to an offset range, a reason or a kind."""

from __future__ import annotations

from dataclasses import dataclass

from closeloop.dead_letter import StoredLetter
from closeloop.kafka import read_to_end
from closeloop.settings import KafkaSettings
from closeloop.topics import DLQ_SUFFIX, dlq


def dead_letter_topic(topic: str) -> str:
    """`iam.raw.okta` and `iam.raw.okta.dlq` both name the dead-letter topic `iam.raw.okta.dlq`."""
    return topic if topic.endswith(DLQ_SUFFIX) else dlq(topic)


@dataclass(frozen=True)
class LetterSelection:
    partition: int | None = None
    from_offset: int | None = None  # inclusive, offsets of the dead-letter topic
    to_offset: int | None = None  # inclusive
    reason: str | None = None  # case-insensitive substring of the reason
    kind: str | None = None

    def __contains__(self, letter: StoredLetter) -> bool:
        return (
            (self.partition is None or letter.partition == self.partition)
            and (self.from_offset is None or letter.offset >= self.from_offset)
            and (self.to_offset is None or letter.offset <= self.to_offset)
            and (self.reason is None or self.reason.lower() in letter.reason.lower())
            and (self.kind is None or letter.kind == self.kind)
        )


async def list_dead_letters(
    kafka: KafkaSettings, topic: str, selection: LetterSelection | None = None
) -> list[StoredLetter]:
    """The selected letters of `topic`'s dead-letter topic, up to its end now; LookupError if it does not exist."""
    selection = selection or LetterSelection()
    letters = []
    async for record in read_to_end(kafka, dead_letter_topic(topic), client_suffix="dlq-list"):
        letter = StoredLetter.of(record)
        if letter in selection:
            letters.append(letter)
    return letters
