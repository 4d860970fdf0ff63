"""`closeloop identities ...` and `closeloop catalog ...` against real PostgreSQL and Kafka, as an operator runs them."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from closeloop.contracts.codec import decode
from closeloop.contracts.directory import IdentityLinked, ResourceCatalogued
from closeloop.identity.store import link_groups
from closeloop.settings import DatabaseSettings, KafkaSettings
from closeloop.topics import TopicSpec, ensure_topics
from tests.support.infra import REPO_ROOT
from tests.support.kafka_helpers import read_topic

pytestmark = pytest.mark.integration


async def closeloop(env: dict[str, str], *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "closeloop_cli.main",
        *args,
        cwd=REPO_ROOT,
        env={**os.environ, "COLUMNS": "400", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode or 0, output.decode(errors="replace")


async def test_operator_loads_aliases_and_catalog_then_inspects_them(
    kafka_settings: KafkaSettings, database_settings: DatabaseSettings, owner_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    links, catalog = f"test.identity.links.{tag}", f"test.identity.catalog.{tag}"
    await ensure_topics(kafka_settings, [TopicSpec(t, retention_ms=-1, compacted=True) for t in (links, catalog)])
    env = {
        "CLOSELOOP_DATABASE_URL": database_settings.url.get_secret_value(),
        "CLOSELOOP_KAFKA_BOOTSTRAP": kafka_settings.bootstrap,
        "CLOSELOOP_IDENTITY_LINKS_TOPIC": links,
        "CLOSELOOP_IDENTITY_CATALOG_TOPIC": catalog,
    }
    email = f"alice.{tag}@example.com"
    aliases = tmp_path / "aliases.yaml"
    aliases.write_text(f"identities:\n  - id: {email}\n    aliases: [github:user:alice-{tag}]\n")
    resources = tmp_path / "catalog.yaml"
    resources.write_text(
        "resources:\n"
        f"  - {{id: okta:group:00ga{tag}, name: Finance {tag}, aliases: [fin-{tag}]}}\n"
        f"  - {{id: okta:group:00gb{tag}, name: Finance {tag}}}\n"
        f"  - {{id: okta:group:00gc{tag}, name: Engineering Admins {tag}}}\n"
    )

    code, output = await closeloop(env, "identities", "load", str(aliases), "--dry-run")
    assert code == 0, output
    assert f"github:user:alice-{tag}" in output
    assert await owner_pool.fetchval("SELECT count(*) FROM identity_links WHERE identity_id = $1", email) == 0

    code, output = await closeloop(env, "identities", "load", str(aliases))
    assert code == 0, output
    rows = await owner_pool.fetch("SELECT name, origin FROM identity_links WHERE identity_id = $1 ORDER BY name", email)
    assert [(r["name"], r["origin"]) for r in rows] == [
        (f"email:{email}", "operator"),
        (f"github:user:alice-{tag}", "operator"),
    ]
    code, output = await closeloop(env, "catalog", "load", str(resources))
    assert code == 0, output

    announced = await read_topic(kafka_settings, links, until=lambda r: len(r) >= 1, timeout_s=10)
    (link,) = [decode(r.value) for r in announced]
    assert isinstance(link, IdentityLinked)
    assert (link.origin, link.identity_id) == ("operator", email)
    catalogued = await read_topic(kafka_settings, catalog, until=lambda r: len(r) >= 3, timeout_s=10)
    assert {decode(r.value).resource for r in catalogued} == {  # type: ignore[attr-defined]
        f"okta:group:00ga{tag}",
        f"okta:group:00gb{tag}",
        f"okta:group:00gc{tag}",
    }
    assert all(isinstance(decode(r.value), ResourceCatalogued) for r in catalogued)

    code, output = await closeloop(env, "catalog", "resolve", f"engineering  admins {tag}", "--system", "okta")
    assert (code, f"okta:group:00gc{tag}" in output) == (0, True), output
    code, output = await closeloop(env, "catalog", "resolve", f"Finance {tag}", "--system", "okta")
    assert code == 2, output  # ambiguous: never a guess
    code, output = await closeloop(env, "catalog", "resolve", f"fin-{tag}", "--system", "okta")
    assert (code, f"okta:group:00ga{tag}" in output) == (0, True), output
    code, output = await closeloop(env, "catalog", "resolve", f"Payroll {tag}", "--system", "okta")
    assert code == 1, output

    code, output = await closeloop(env, "identities", "show", email)
    assert code == 0, output
    assert f"github:user:alice-{tag}" in output

    async with owner_pool.acquire() as conn, conn.transaction():
        await link_groups(conn, [(f"okta:user:bob-{tag}", [f"email:bob.{tag}@example.com"])], "okta")
        await link_groups(
            conn, [(f"github:user:shared-{tag}", [f"email:{email}", f"email:bob.{tag}@example.com"])], "github"
        )
    code, output = await closeloop(env, "identities", "conflicts")
    assert code == 0, output
    assert f"shared-{tag}" in output

    # After an upgrade: what PostgreSQL holds (here the okta link recorded above) is announced on the topics.
    code, output = await closeloop(env, "identities", "announce", "--dry-run")
    assert (code, "would announce" in output) == (0, True), output
    code, output = await closeloop(env, "identities", "announce")
    assert code == 0, output
    again = await read_topic(kafka_settings, links, until=lambda r: len(r) >= 3, timeout_s=10)
    names = {n for r in again for n in decode(r.value).names}  # type: ignore[attr-defined]
    assert {f"okta:user:bob-{tag}", f"email:bob.{tag}@example.com"} <= names
