"""The in-memory deadline index of one worker: which keys need re-evaluation when (pure, no faust).

The join engine stores each entitlement's next check in its state; the index mirrors it for the partitions
this worker owns, so the timer finds due keys without scanning the tables. It is rebuilt from the local
table after every rebalance (and periodically, as a safety net); entries of partitions the worker no longer
owns are skipped, so the timer is safe to run on every worker.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from datetime import datetime, timedelta


class DeadlineIndex:
    def __init__(self) -> None:
        self._heap: list[tuple[datetime, str]] = []
        self._current: dict[str, tuple[datetime, int]] = {}

    def __len__(self) -> int:
        return len(self._current)

    def arm(self, key: str, at: datetime | None, partition: int) -> None:
        if at is None:
            self._current.pop(key, None)
            return
        if self._current.get(key) == (at, partition):
            return
        self._current[key] = (at, partition)
        heapq.heappush(self._heap, (at, key))

    def rebuild(self, entries: Iterable[tuple[str, datetime | None, int]]) -> None:
        self._heap.clear()
        self._current.clear()
        for key, at, partition in entries:
            self.arm(key, at, partition)

    def pop_due(self, now: datetime, owned: set[int], retry_after: timedelta) -> list[tuple[str, int]]:
        """Due keys of owned partitions; each is re-armed at now + retry_after until the join answers its tick."""
        due: list[tuple[str, int]] = []
        while self._heap and self._heap[0][0] <= now:
            at, key = heapq.heappop(self._heap)
            current = self._current.get(key)
            if current is None or current[0] != at:
                continue  # superseded entry
            partition = current[1]
            if partition not in owned:
                del self._current[key]
                continue
            due.append((key, partition))
            self.arm(key, now + retry_after, partition)
        # Keep the heap from growing without bound with superseded entries.
        if len(self._heap) > 4 * max(len(self._current), 1024):
            self.rebuild([(k, at, p) for k, (at, p) in self._current.items()])
        return due
