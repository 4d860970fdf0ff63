"""Shared fixtures: real Kafka and PostgreSQL (see tests/support/infra.py for where they come from)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from closeloop.db.migrate import apply_migrations
from closeloop.settings import DatabaseSettings, KafkaSettings
from tests.support.infra import Infra, provide_infra


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    with provide_infra() as found:
        saved = {k: os.environ.get(k) for k in _ENV_KEYS}
        os.environ["CLOSELOOP_KAFKA_BOOTSTRAP"] = found.kafka_bootstrap
        os.environ["CLOSELOOP_DATABASE_URL"] = found.database_url
        os.environ["CLOSELOOP_DATABASE_MIGRATE_URL"] = found.migrate_url
        # Services started by the tests use the DSN above (each test may point it at its own schema),
        # not the per-service roles of the local stack's env file; tests of those roles name them.
        for service in SERVICE_ROLES:
            os.environ[f"CLOSELOOP_DATABASE_{service.upper()}_URL"] = ""
        try:
            yield found
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


SERVICE_ROLES = ("intake", "connectors", "provisioning", "expiry")
_ENV_KEYS = (
    "CLOSELOOP_KAFKA_BOOTSTRAP",
    "CLOSELOOP_DATABASE_URL",
    "CLOSELOOP_DATABASE_MIGRATE_URL",
    *(f"CLOSELOOP_DATABASE_{service.upper()}_URL" for service in SERVICE_ROLES),
)


@pytest.fixture(scope="session")
async def migrated(infra: Infra) -> Infra:
    await apply_migrations(infra.migrate_url)
    return infra


@pytest.fixture(scope="session")
def kafka_settings(infra: Infra) -> KafkaSettings:
    return KafkaSettings(bootstrap=infra.kafka_bootstrap)


@pytest.fixture(scope="session")
def database_settings(migrated: Infra) -> DatabaseSettings:
    return DatabaseSettings(url=migrated.database_url, migrate_url=migrated.migrate_url)


@pytest.fixture
async def app_pool(database_settings: DatabaseSettings) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the least-privilege service role, as the services use."""
    pool = await asyncpg.create_pool(database_settings.url.get_secret_value(), min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def owner_pool(database_settings: DatabaseSettings) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the schema owner role, for test setup and for simulating tampering."""
    pool = await asyncpg.create_pool(database_settings.migration_dsn(), min_size=1, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()
