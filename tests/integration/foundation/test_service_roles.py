"""Each service's database role holds exactly what its service does (migrations 0343 and 0443), none may write
the audit tables, and the roles that change the record append audit rows through audit_append."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import AsyncIterator
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import pytest

from closeloop.contracts.entitlements import EntitlementChange, EntitlementStatus
from closeloop.db.migrate import apply_migrations
from closeloop.record import Cause, EntitlementRecord, RecordTopics, record_transaction, verify_chain
from tests.integration.provisioning.conftest import with_search_path
from tests.support.infra import Infra
from tests.unit.provisioning.factories import key

pytestmark = pytest.mark.integration

RECORD = {
    "processed_events": {"SELECT", "INSERT"},
    "outbox": {"SELECT", "INSERT", "DELETE"},
    "identities": {"SELECT", "INSERT", "UPDATE"},
    # The identity graph a record's identities link into (0443), and the catalog provisioning binds names with.
    "identity_links": {"SELECT", "INSERT", "UPDATE"},
    "identity_link_conflicts": {"SELECT", "INSERT", "UPDATE"},
    "catalog_resources": {"SELECT"},
    "entitlements": {"SELECT", "INSERT", "UPDATE"},
    "observed_grants": {"SELECT", "INSERT", "UPDATE"},
    "entitlement_exceptions": {"SELECT", "INSERT"},
    "recertifications": {"SELECT", "INSERT"},
    "audit_log": {"SELECT"},
    "audit_chain_head": {"SELECT"},
}
EXPIRY_TABLES = (
    "expiry_notices",
    "expiry_recert_stages",
    "expiry_revoke_followups",
    "expiry_triggers",
    "expiry_owner_flags",
)
EXPECTED: dict[str, dict[str, set[str]]] = {
    "intake": {
        "intake_ticket_state": {"SELECT", "INSERT", "UPDATE"},
        "intake_webhook_deliveries": {"SELECT", "INSERT", "UPDATE", "DELETE"},
    },
    "connectors": {
        "connector_processed_records": {"SELECT", "INSERT", "DELETE"},
        "connector_state_cache": {"SELECT", "INSERT", "UPDATE", "DELETE"},
        # The connectors feed the identity graph and the resource catalog (0443).
        "identity_links": {"SELECT", "INSERT", "UPDATE"},
        "identity_link_conflicts": {"SELECT", "INSERT", "UPDATE"},
        "catalog_resources": {"SELECT", "INSERT", "UPDATE"},
    },
    "provisioning": {**RECORD, "command_executions": {"SELECT", "INSERT", "UPDATE"}},
    "expiry": {**RECORD, **{t: {"SELECT", "INSERT", "UPDATE"} for t in EXPIRY_TABLES}},
}
APPENDERS = {"provisioning", "expiry"}
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


def as_login(dsn: str, user: str, password: str) -> str:
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{quote(user)}:{quote(password)}@{host}"))


@pytest.fixture(scope="module")
async def schema(infra: Infra) -> AsyncIterator[str]:
    """A schema migrated from every migration, as production is."""
    name = f"roles_t_{uuid.uuid4().hex[:10]}"
    owner = await asyncpg.connect(infra.migrate_url)
    try:
        await owner.execute(f'CREATE SCHEMA "{name}"')
        await apply_migrations(with_search_path(infra.migrate_url, name))
        yield name
    finally:
        await owner.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        await owner.close()


@pytest.fixture(scope="module")
async def logins(infra: Infra, schema: str) -> AsyncIterator[dict[str, str]]:
    """A throwaway login per service role (a member of it, with nothing of its own): service -> DSN."""
    owner = await asyncpg.connect(infra.migrate_url)
    made: dict[str, str] = {}
    try:
        for service in EXPECTED:
            user, password = f"t_{service}_{uuid.uuid4().hex[:8]}", secrets.token_hex(16)
            await owner.execute(f"CREATE ROLE {user} LOGIN PASSWORD '{password}' IN ROLE closeloop_{service}")
            made[user] = with_search_path(as_login(infra.database_url, user, password), schema)
        yield dict(zip(EXPECTED, made.values(), strict=True))
    finally:
        for user in made:
            await owner.execute(f"DROP ROLE IF EXISTS {user}")
        await owner.close()


@pytest.mark.parametrize("service", sorted(EXPECTED))
async def test_each_service_role_holds_exactly_what_its_service_does(infra: Infra, schema: str, service: str) -> None:
    conn = await asyncpg.connect(infra.migrate_url)
    try:
        tables = [
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)
            if r["tablename"] != "schema_migrations"
        ]
        held = {
            table: {
                p
                for p in PRIVILEGES
                if await conn.fetchval(
                    "SELECT has_table_privilege($1, format('%I.%I', $2::text, $3::text), $4)",
                    f"closeloop_{service}",
                    schema,
                    table,
                    p,
                )
            }
            for table in tables
        }
        may_append = await conn.fetchval(
            "SELECT has_function_privilege($1, format('%I.audit_append(jsonb)', $2::text), 'EXECUTE')",
            f"closeloop_{service}",
            schema,
        )
    finally:
        await conn.close()
    assert {t: p for t, p in held.items() if p} == EXPECTED[service]
    assert may_append is (service in APPENDERS)
    assert all("INSERT" not in held[t] and "UPDATE" not in held[t] for t in ("audit_log", "audit_chain_head"))


@pytest.mark.parametrize("service", sorted(APPENDERS))
async def test_record_roles_change_the_record_and_append_audit_rows(logins: dict[str, str], service: str) -> None:
    pool = await asyncpg.create_pool(logins[service], min_size=1, max_size=2)
    try:
        entitlement = key(f"okta:user:{service}-{uuid.uuid4().hex[:6]}@example.com")
        async with record_transaction(pool, actor=service, topics=RecordTopics("t.e", "t.c")) as tx:
            assert await tx.claim(service, f"evt-{uuid.uuid4()}")
            await tx.apply(
                None,
                EntitlementRecord.new(entitlement, status=EntitlementStatus.PENDING),
                change=EntitlementChange.REQUESTED,
                cause=Cause.new(),
            )
        [row] = tx.audit_rows
        assert (row.appended_by or "").startswith(f"t_{service}_")
        async with pool.acquire() as conn:
            assert (await verify_chain(conn)).ok
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("UPDATE audit_chain_head SET seq = seq")
    finally:
        await pool.close()


@pytest.mark.parametrize("service", ["intake", "connectors"])
async def test_internet_facing_roles_cannot_touch_the_record_or_the_audit_log(
    logins: dict[str, str], service: str
) -> None:
    conn = await asyncpg.connect(logins[service])
    try:
        entry = {"recorded_at": "2026-03-02T09:00:00+00:00", "entity_type": "entitlement", "entity_key": "k",
                 "action": "activated", "actor": "provisioning", "payload": {}}  # fmt: skip
        for statement, args in (
            ("SELECT * FROM audit_append($1::jsonb)", (json.dumps([entry]),)),
            ("SELECT count(*) FROM audit_log", ()),
            ("SELECT count(*) FROM entitlements", ()),
            ("INSERT INTO outbox (topic, value) VALUES ('iam.grants.v1', '\\x00')", ()),
            ("INSERT INTO processed_events (consumer, event_id) VALUES ('provisioning', 'x')", ()),
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement, *args)
    finally:
        await conn.close()
