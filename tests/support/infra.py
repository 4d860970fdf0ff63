"""Where the integration tests find Kafka and PostgreSQL, in order:

1. `CLOSELOOP_KAFKA_BOOTSTRAP` / `CLOSELOOP_DATABASE_URL` from the environment;
2. testcontainers, when a Docker engine answers;
3. the local stack (`make infra`: Kafka from Maven Central on Java, PostgreSQL from Debian's packages).

Nothing here skips: if no option works, the tests fail and say why.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from closeloop.settings import env_file

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Infra:
    kafka_bootstrap: str
    database_url: str  # least-privilege service role
    migrate_url: str  # schema owner, applies migrations
    origin: str


def _read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def _docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        return bool(client.ping())
    except Exception:  # no engine, no socket, no permission: all mean "not available"
        return False


@contextmanager
def _testcontainers() -> Iterator[Infra]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    with ExitStack() as stack:
        kafka = stack.enter_context(KafkaContainer("apache/kafka:4.1.1").with_kraft())
        postgres = stack.enter_context(PostgresContainer("postgres:16-alpine", driver=None))
        admin_url = postgres.get_connection_url()
        password = secrets.token_hex(16)
        import asyncio

        import asyncpg

        async def make_app_role() -> None:
            conn = await asyncpg.connect(admin_url)
            try:
                await conn.execute(f"CREATE ROLE closeloop_app LOGIN PASSWORD '{password}'")
            finally:
                await conn.close()

        asyncio.run(make_app_role())
        host_part = admin_url.split("@", 1)[1]
        yield Infra(
            kafka_bootstrap=kafka.get_bootstrap_server(),
            database_url=f"postgresql://closeloop_app:{password}@{host_part}",
            migrate_url=admin_url,
            origin="testcontainers",
        )


def _local_stack() -> Infra:
    result = subprocess.run(["make", "-s", "infra"], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"the local stack did not start (make infra):\n{result.stdout}\n{result.stderr}")
    values = _read_env_file(env_file())
    return Infra(
        kafka_bootstrap=values["CLOSELOOP_KAFKA_BOOTSTRAP"],
        database_url=values["CLOSELOOP_DATABASE_URL"],
        migrate_url=values.get("CLOSELOOP_DATABASE_MIGRATE_URL", values["CLOSELOOP_DATABASE_URL"]),
        origin="local stack",
    )


@contextmanager
def provide_infra() -> Iterator[Infra]:
    bootstrap = os.environ.get("CLOSELOOP_KAFKA_BOOTSTRAP")
    database = os.environ.get("CLOSELOOP_DATABASE_URL")
    if bootstrap and database:
        yield Infra(bootstrap, database, os.environ.get("CLOSELOOP_DATABASE_MIGRATE_URL", database), "environment")
    elif _docker_answers():
        with _testcontainers() as infra:
            yield infra
    else:
        yield _local_stack()
