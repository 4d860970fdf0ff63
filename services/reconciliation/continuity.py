"""Offset continuity for faust agents (pure): every record of an assigned partition is seen once, in order.

Why: faust-streaming 0.15.3 can skip records right after an assignment. Its recovery resumes the stream
partitions before seeking them to the committed offsets, and records drained while flow is suspended are
marked read without reaching the agent; faust then takes the hole for a legitimate gap (as in a compacted
topic) and commits past it. Seen with Kafka 4.x in the kill/restart test: after a restart, a run of 7-20
records per partition never reached the agent.

So each agent checks continuity itself: per partition it expects the next offset (the group's committed
offset when it first sees the partition in a generation, then last + 1). A record past the expected offset
means a hole: the agent re-reads the hole with a plain reader and processes it first. A record before it
was already handled by this worker and is skipped. Genuine holes (compaction, transaction markers) read
back as nothing, at the cost of one read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

TopicPartitionKey = tuple[str, int]


class Verdict(Enum):
    NEXT = "next"
    DUPLICATE = "duplicate"
    HOLE = "hole"


@dataclass
class Continuity:
    generation: int | None = None
    expected: dict[TopicPartitionKey, int] = field(default_factory=dict)

    def start_generation(self, generation: int) -> bool:
        """Forget expectations when the group generation changed; True when it did."""
        if generation == self.generation:
            return False
        self.generation = generation
        self.expected.clear()
        return True

    def unknown(self, partitions: set[TopicPartitionKey]) -> set[TopicPartitionKey]:
        return {tp for tp in partitions if tp not in self.expected}

    def learn(self, tp: TopicPartitionKey, committed: int | None, first_seen: int) -> None:
        """Start expecting from the committed offset (or, with none committed, from the first record seen)."""
        self.expected[tp] = committed if committed is not None and committed >= 0 else first_seen

    def check(self, tp: TopicPartitionKey, offset: int) -> tuple[Verdict, int]:
        """The verdict for a record, and (for a hole) the first missing offset."""
        expected = self.expected.get(tp, offset)
        if offset < expected:
            return Verdict.DUPLICATE, expected
        if offset > expected:
            return Verdict.HOLE, expected
        return Verdict.NEXT, expected

    def advance(self, tp: TopicPartitionKey, offset: int) -> None:
        self.expected[tp] = max(self.expected.get(tp, offset + 1), offset + 1)
