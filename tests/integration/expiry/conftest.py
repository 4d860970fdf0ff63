"""Expiry integration tests run in their own PostgreSQL schema.

Sweeps act on every due row of the database they see. In the shared test database other areas' tests
leave entitlements with all kinds of expiry dates, so a sweep there would revoke their rows (and theirs
would race ours). A fresh schema per test, migrated from the same files, keeps both sides honest.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import pytest

from closeloop.db.migrate import apply_migrations
from closeloop.settings import DatabaseSettings
from tests.support.infra import Infra


def with_search_path(dsn: str, schema: str) -> str:
    parts = urlsplit(dsn)
    query = dict(parse_qsl(parts.query))
    query["search_path"] = schema
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.fixture
async def expiry_db(infra: Infra) -> AsyncIterator[DatabaseSettings]:
    schema = f"expiry_t_{uuid.uuid4().hex[:10]}"
    owner = await asyncpg.connect(infra.migrate_url)
    try:
        await owner.execute(f'CREATE SCHEMA "{schema}"')
        await owner.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO closeloop_app')
        await apply_migrations(with_search_path(infra.migrate_url, schema))
        yield DatabaseSettings(
            url=with_search_path(infra.database_url, schema),
            migrate_url=with_search_path(infra.migrate_url, schema),
            pool_max_size=6,
        )
    finally:
        await owner.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await owner.close()


@pytest.fixture
async def pool(expiry_db: DatabaseSettings) -> AsyncIterator[asyncpg.Pool]:
    """The service role's pool inside the test schema."""
    created = await asyncpg.create_pool(expiry_db.url.get_secret_value(), min_size=1, max_size=6)
    try:
        yield created
    finally:
        await created.close()


@pytest.fixture
async def owner(expiry_db: DatabaseSettings) -> AsyncIterator[asyncpg.Connection]:
    """A schema-owner connection inside the test schema (bulk setup and cleanup)."""
    conn = await asyncpg.connect(expiry_db.migration_dsn())
    try:
        yield conn
    finally:
        await conn.close()
