"""Provisioning integration tests run against a fresh PostgreSQL schema per test.

The schema gets what the record needs (`record_migrations`: the foundation, the record, the audit function
and the identity graph) from the same files production uses, so each test sees an empty record and a chain
that starts at seq 1, and tampering with the audit log in one test cannot break anyone else's chain.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import pytest

from closeloop.db.migrate import record_migrations
from closeloop.settings import DatabaseSettings


def with_search_path(dsn: str, schema: str) -> str:
    parts = urlsplit(dsn)
    query = dict(parse_qsl(parts.query))
    query["search_path"] = schema
    return urlunsplit(parts._replace(query=urlencode(query)))


def provisioning_migrations() -> list[str]:
    return [m.sql for m in record_migrations()]


@dataclass(frozen=True)
class RecordDb:
    schema: str
    settings: DatabaseSettings  # the service role and the owner, both on the schema
    app: asyncpg.Pool  # service role
    owner: asyncpg.Pool  # schema owner (for tampering)


@pytest.fixture
async def record_db(database_settings: DatabaseSettings, owner_pool: asyncpg.Pool) -> AsyncIterator[RecordDb]:
    schema = f"prov_t_{uuid.uuid4().hex[:10]}"
    async with owner_pool.acquire() as conn:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        await conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO closeloop_app')
        async with conn.transaction():
            await conn.execute(f'SET LOCAL search_path TO "{schema}"')
            for sql in provisioning_migrations():
                await conn.execute(sql)
    app_url = with_search_path(database_settings.url.get_secret_value(), schema)
    owner_url = with_search_path(database_settings.migration_dsn(), schema)
    settings = DatabaseSettings(url=app_url, migrate_url=owner_url, pool_max_size=6)
    app = await asyncpg.create_pool(app_url, min_size=1, max_size=6)
    owner = await asyncpg.create_pool(owner_url, min_size=1, max_size=2)
    try:
        yield RecordDb(schema, settings, app, owner)
    finally:
        await app.close()
        await owner.close()
        async with owner_pool.acquire() as conn:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
