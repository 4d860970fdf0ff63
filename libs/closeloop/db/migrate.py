"""Apply the ordered SQL migrations in `migrations/`, each once, in its own transaction.

Applied files are recorded (with a checksum) in `schema_migrations`; an applied file that changed is an
error, never silently re-run. An advisory lock keeps concurrent runs (several services starting at
once) from racing. Run with `python -m closeloop.db.migrate`; it uses the migration role's DSN.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from closeloop.logging import configure_logging, get_logger
from closeloop.settings import DatabaseSettings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
LOCK_ID = 0x636C6F73  # an arbitrary constant shared by every closeloop migrator


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(RuntimeError):
    pass


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        version, _, name = path.stem.partition("_")
        if not version.isdigit():
            raise MigrationError(f"migration file name must start with a number: {path.name}")
        migrations.append(Migration(version=version, name=name, sql=path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {directory}")
    return migrations


def record_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """What the entitlement record needs on its own (a schema for its tests and benchmarks): the
    foundation (0001), the record (0010-0019), the audit append function (0342), the identity graph its
    identities link into (0042, replaced by 0443) and the due sweeps' indexes on the record (0500)."""
    own = ("0001", "0042", "0342", "0443", "0500")
    return [m for m in load_migrations(directory) if m.version in own or "0010" <= m.version <= "0019"]


async def apply_migrations(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; return the versions applied by this call."""
    log = get_logger(__name__)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_ID)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version text PRIMARY KEY,
                   name text NOT NULL,
                   checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        applied = {
            r["version"]: r["checksum"] for r in await conn.fetch("SELECT version, checksum FROM schema_migrations")
        }
        done = []
        for migration in load_migrations(directory):
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise MigrationError(f"applied migration {migration.version}_{migration.name} was changed")
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            log.info("migration applied", version=migration.version, name=migration.name)
            done.append(migration.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_ID)
        await conn.close()


def main() -> None:
    configure_logging("migrate")
    applied = asyncio.run(apply_migrations(DatabaseSettings().migration_dsn()))
    get_logger().info("migrations up to date", applied=applied)


if __name__ == "__main__":
    main()
