"""Publish each vendor record once: a processed-records ledger, in memory or in PostgreSQL.

Deterministic event ids already let consumers drop redeliveries; the ledger also keeps a connector from
publishing them at all. With PostgreSQL the claim is held in an open transaction while the events are
published and committed only after the broker acknowledged them: a failed publish rolls the claim back
(the record will be retried), and a concurrent delivery of the same record waits on the row lock and
then sees it as a duplicate.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import asyncpg

PROCESSED_TABLE = "connector_processed_records"


async def claim_record_ids(conn: asyncpg.Connection, source: str, keys: Iterable[str]) -> set[str]:
    """Insert the record keys not yet processed for `source`; return those newly claimed.

    Call inside a transaction; keys are claimed in sorted order so that concurrent claimers of
    overlapping batches cannot deadlock.
    """
    unique = sorted(set(keys))
    if not unique:
        return set()
    rows = await conn.fetch(
        f"""INSERT INTO {PROCESSED_TABLE} (source, record_key)
            SELECT $1, k FROM unnest($2::text[]) AS k
            ON CONFLICT (source, record_key) DO NOTHING
            RETURNING record_key""",  # noqa: S608 - the table name is a module constant
        source,
        unique,
    )
    return {row["record_key"] for row in rows}


class InMemoryDedupe:
    """A bounded in-process ledger (least recently seen keys are forgotten first). For tests and for
    connectors that run as a single process without a database."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._max = max_entries

    def claim(self, source: str, keys: Iterable[str]) -> set[str]:
        fresh: set[str] = set()
        for key in keys:
            entry = (source, key)
            if entry in self._seen:
                self._seen.move_to_end(entry)
                continue
            fresh.add(key)
            self._seen[entry] = None
            if len(self._seen) > self._max:
                self._seen.popitem(last=False)
        return fresh

    def release(self, source: str, keys: Iterable[str]) -> None:
        for key in keys:
            self._seen.pop((source, key), None)


class PostgresDedupe:
    """The processed-records ledger in PostgreSQL (migration `0040_connector_processed_records`)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def claiming(self, source: str, keys: Iterable[str]) -> AsyncIterator[set[str]]:
        """Yield the keys not processed before; commit the claim only if the block succeeds."""
        async with self._pool.acquire() as conn, conn.transaction():
            yield await claim_record_ids(conn, source, keys)

    async def purge_older_than(self, days: int) -> int:
        """Forget records processed more than `days` ago (redeliveries come within hours, not weeks)."""
        result: str = await self._pool.execute(
            f"DELETE FROM {PROCESSED_TABLE} WHERE processed_at < now() - make_interval(days => $1)",  # noqa: S608
            days,
        )
        return int(result.split()[-1])
