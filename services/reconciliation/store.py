"""Where the join state lives, seen from the join engine: five key/value tables, all partitioned like the join
topic (by principal). The faust app backs them with changelog-backed tables; unit tests use `MemoryTables`.

The engine reads and writes through a `UnitOfWork`: reads are cached, writes are collected, and the caller
decides when they become durable (after the batch's alerts were acknowledged by the broker).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from reconciliation.routing import partition_for, principal_of_key
from reconciliation.state import (
    AlertSlots,
    EntitlementState,
    PersonTickets,
    PrincipalState,
    SnapshotProgress,
    StateModel,
)

ENTITLEMENTS = "entitlements"
PRINCIPALS = "principals"
ALERTS = "alerts"
SNAPSHOTS = "snapshots"
PEOPLE = "people"
TABLES: dict[str, type[StateModel]] = {
    ENTITLEMENTS: EntitlementState,
    PRINCIPALS: PrincipalState,
    ALERTS: AlertSlots,
    SNAPSHOTS: SnapshotProgress,
    PEOPLE: PersonTickets,
}

M = TypeVar("M", bound=StateModel)


def snapshot_slot(snapshot_id: str, partition: int) -> str:
    """Each join partition tracks its own progress through a snapshot (markers arrive on every partition)."""
    return f"{snapshot_id}@{partition}"


def person_slot(person: str, partition: int) -> str:
    return f"{person}@{partition}"


class Tables(Protocol):
    """Raw table access: JSON-able dicts by table name and key."""

    def get(self, table: str, key: str) -> dict[str, Any] | None: ...

    def items(self, table: str) -> Iterable[tuple[str, dict[str, Any]]]: ...


@dataclass(frozen=True)
class Write:
    table: str
    key: str
    value: dict[str, Any]
    partition: int


class MemoryTables:
    """Plain dictionaries, for unit tests and benchmarks of the pure join."""

    def __init__(self) -> None:
        self.data: dict[str, MutableMapping[str, dict[str, Any]]] = {name: {} for name in TABLES}

    def get(self, table: str, key: str) -> dict[str, Any] | None:
        return self.data[table].get(key)

    def items(self, table: str) -> Iterable[tuple[str, dict[str, Any]]]:
        return list(self.data[table].items())

    def apply(self, writes: Iterable[Write]) -> None:
        for write in writes:
            self.data[write.table][write.key] = write.value


@dataclass
class UnitOfWork:
    tables: Tables
    partitions: int
    _cache: dict[tuple[str, str], StateModel | None] = field(default_factory=dict)
    _dirty: dict[tuple[str, str], int] = field(default_factory=dict)
    # Previous (value, dirty partition) of every slot written, so one failed input can be rolled back.
    _journal: list[tuple[tuple[str, str], StateModel | None, int | None]] = field(default_factory=list)

    def _get(self, table: str, key: str, model: type[M]) -> M | None:
        slot = (table, key)
        if slot not in self._cache:
            raw = self.tables.get(table, key)
            self._cache[slot] = model.load(raw) if raw is not None else None
        value = self._cache[slot]
        return value if isinstance(value, model) else None

    def _put(self, table: str, key: str, value: StateModel, partition: int) -> None:
        slot = (table, key)
        if self._cache.get(slot) == value and slot not in self._dirty:
            return
        self._journal.append((slot, self._cache.get(slot), self._dirty.get(slot)))
        self._cache[slot] = value
        self._dirty[slot] = partition

    def savepoint(self) -> int:
        return len(self._journal)

    def rollback(self, savepoint: int) -> None:
        """Undo every write since the savepoint (an input whose processing failed half-way)."""
        while len(self._journal) > savepoint:
            slot, value, dirty = self._journal.pop()
            self._cache[slot] = value
            if dirty is None:
                self._dirty.pop(slot, None)
            else:
                self._dirty[slot] = dirty

    def entitlement(self, key: str) -> EntitlementState | None:
        return self._get(ENTITLEMENTS, key, EntitlementState)

    def principal(self, principal: str) -> PrincipalState | None:
        return self._get(PRINCIPALS, principal, PrincipalState)

    def alerts(self, key: str) -> AlertSlots | None:
        return self._get(ALERTS, key, AlertSlots)

    def snapshot(self, slot: str) -> SnapshotProgress | None:
        return self._get(SNAPSHOTS, slot, SnapshotProgress)

    def person(self, slot: str) -> PersonTickets | None:
        return self._get(PEOPLE, slot, PersonTickets)

    def partition_of(self, principal: str) -> int:
        return partition_for(principal, self.partitions)

    def put_entitlement(self, state: EntitlementState) -> None:
        self._put(ENTITLEMENTS, state.key, state, self.partition_of(state.principal))

    def put_principal(self, state: PrincipalState) -> None:
        self._put(PRINCIPALS, state.principal, state, self.partition_of(state.principal))

    def put_alerts(self, slots: AlertSlots) -> None:
        self._put(ALERTS, slots.key, slots, self.partition_of(principal_of_key(slots.key)))

    def put_snapshot(self, slot: str, progress: SnapshotProgress, partition: int) -> None:
        self._put(SNAPSHOTS, slot, progress, partition)

    def put_person(self, slot: str, tickets: PersonTickets, partition: int) -> None:
        self._put(PEOPLE, slot, tickets, partition)

    def entitlement_keys(self, partition: int) -> Iterator[str]:
        """Keys of the entitlements on one join partition (including ones written in this unit of work)."""
        seen = set()
        for key, _ in self.tables.items(ENTITLEMENTS):
            seen.add(key)
            if self.partition_of(principal_of_key(key)) == partition:
                yield key
        for (table, key), part in list(self._dirty.items()):
            if table == ENTITLEMENTS and key not in seen and part == partition:
                yield key

    def principal_names(self, partition: int) -> Iterator[str]:
        seen = set()
        for name, _ in self.tables.items(PRINCIPALS):
            seen.add(name)
            if self.partition_of(name) == partition:
                yield name
        for (table, name), part in list(self._dirty.items()):
            if table == PRINCIPALS and name not in seen and part == partition:
                yield name

    def writes(self) -> list[Write]:
        """What to make durable, in write order; clears the dirty set (the cache stays valid)."""
        writes = []
        for (table, key), partition in self._dirty.items():
            value = self._cache[(table, key)]
            if value is not None:
                writes.append(Write(table=table, key=key, value=value.dump(), partition=partition))
        self._dirty.clear()
        self._journal.clear()
        return writes

    def dirty_entitlements(self) -> list[EntitlementState]:
        found = []
        for table, key in self._dirty:
            value = self._cache[(table, key)]
            if table == ENTITLEMENTS and isinstance(value, EntitlementState):
                found.append(value)
        return found
