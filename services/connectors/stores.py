"""PostgreSQL state of the connectors: processed records, the object state cache, the identity graph and catalog.

One `unit()` is one transaction: record claims, state reads (row-locked) and writes, and alias links
commit together, and only after the caller published the events (see `IngestRecords`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol

import asyncpg

from closeloop.connector_sdk.dedupe import claim_record_ids
from closeloop.identity.graph import LinkConflict
from closeloop.identity.store import link_groups, record_resources
from connectors.model import StateEntry

STATE_TABLE = "connector_state_cache"


class LedgerUnit(Protocol):
    async def load_states(self, keys: Iterable[str]) -> dict[str, StateEntry]: ...
    async def claim(self, record_keys: Iterable[str]) -> set[str]: ...
    async def save_states(self, updates: Mapping[str, StateEntry]) -> None: ...
    async def link_aliases(self, groups: list[tuple[str, list[str]]]) -> list[LinkConflict]: ...
    async def record_resources(self, names: Mapping[str, str | None]) -> None: ...


class Ledger(Protocol):
    def unit(self, source: str) -> Any:  # an async context manager yielding a LedgerUnit
        ...


class PostgresUnit:
    def __init__(self, conn: asyncpg.Connection, source: str) -> None:
        self._conn = conn
        self._source = source

    async def load_states(self, keys: Iterable[str]) -> dict[str, StateEntry]:
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        rows = await self._conn.fetch(
            f"""SELECT object_key, state, observed_at FROM {STATE_TABLE}
                WHERE source = $1 AND object_key = ANY($2::text[])
                ORDER BY object_key FOR UPDATE""",  # noqa: S608 - the table name is a module constant
            self._source,
            wanted,
        )
        return {
            row["object_key"]: StateEntry(
                value=json.loads(row["state"]) if row["state"] is not None else None, observed_at=row["observed_at"]
            )
            for row in rows
        }

    async def claim(self, record_keys: Iterable[str]) -> set[str]:
        return await claim_record_ids(self._conn, self._source, record_keys)

    async def save_states(self, updates: Mapping[str, StateEntry]) -> None:
        if not updates:
            return
        keys, states, times = [], [], []
        for key, entry in sorted(updates.items()):
            keys.append(key)
            states.append(json.dumps(entry.value) if entry.value is not None else None)
            times.append(entry.observed_at)
        # An older observation never replaces a newer one (records can arrive out of order).
        await self._conn.execute(
            f"""INSERT INTO {STATE_TABLE} (source, object_key, state, observed_at)
                SELECT $1, k, s::jsonb, t FROM unnest($2::text[], $3::text[], $4::timestamptz[]) AS u(k, s, t)
                ON CONFLICT (source, object_key) DO UPDATE
                SET state = EXCLUDED.state, observed_at = EXCLUDED.observed_at, updated_at = now()
                WHERE {STATE_TABLE}.observed_at <= EXCLUDED.observed_at""",  # noqa: S608
            self._source,
            keys,
            states,
            times,
        )

    async def link_aliases(self, groups: list[tuple[str, list[str]]]) -> list[LinkConflict]:
        return await link_groups(self._conn, groups, self._source)

    async def record_resources(self, names: Mapping[str, str | None]) -> None:
        await record_resources(self._conn, [(r, n, ()) for r, n in names.items()], self._source)


class PostgresLedger:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def unit(self, source: str) -> AsyncIterator[PostgresUnit]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield PostgresUnit(conn, source)


class InMemoryLedger:
    """The same behaviour without a database (unit tests, one-process tools): changes of a unit are kept
    only if its block completes."""

    def __init__(self) -> None:
        self.processed: set[tuple[str, str]] = set()
        self.states: dict[tuple[str, str], StateEntry] = {}
        self.aliases: dict[str, str] = {}
        self.resources: dict[str, str | None] = {}

    @asynccontextmanager
    async def unit(self, source: str) -> AsyncIterator[_MemoryUnit]:
        unit = _MemoryUnit(self, source)
        yield unit
        unit.commit()


class _MemoryUnit:
    def __init__(self, ledger: InMemoryLedger, source: str) -> None:
        self._ledger = ledger
        self._source = source
        self._claimed: set[tuple[str, str]] = set()
        self._states: dict[tuple[str, str], StateEntry] = {}
        self._aliases: list[tuple[str, list[str]]] = []
        self._resources: dict[str, str | None] = {}

    async def load_states(self, keys: Iterable[str]) -> dict[str, StateEntry]:
        return {k: self._ledger.states[(self._source, k)] for k in keys if (self._source, k) in self._ledger.states}

    async def claim(self, record_keys: Iterable[str]) -> set[str]:
        fresh = {k for k in record_keys if (self._source, k) not in self._ledger.processed}
        self._claimed |= {(self._source, k) for k in fresh}
        return fresh

    async def save_states(self, updates: Mapping[str, StateEntry]) -> None:
        for key, entry in updates.items():
            self._states[(self._source, key)] = entry

    async def link_aliases(self, groups: list[tuple[str, list[str]]]) -> list[LinkConflict]:
        self._aliases += groups
        return []

    async def record_resources(self, names: Mapping[str, str | None]) -> None:
        self._resources.update(names)

    def commit(self) -> None:
        self._ledger.processed |= self._claimed
        for key, entry in self._states.items():
            current = self._ledger.states.get(key)
            if current is None or current.observed_at <= entry.observed_at:
                self._ledger.states[key] = entry
        for principal, aliases in self._aliases:
            identity = next((self._ledger.aliases[n] for n in (principal, *aliases) if n in self._ledger.aliases), None)
            for name in (principal, *aliases):
                self._ledger.aliases.setdefault(name, identity or principal)
        for resource, display_name in self._resources.items():
            if display_name or resource not in self._ledger.resources:
                self._ledger.resources[resource] = display_name
