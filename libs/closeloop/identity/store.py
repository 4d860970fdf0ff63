"""The identity graph and the resource catalog in PostgreSQL (tables `identity_links`, `identity_link_conflicts`,
`catalog_resources`), for the services that decide in a database transaction (provisioning, expiry, the CLI).

Same rules as the in-memory graph: observations never merge two identities (a conflict is recorded instead);
the operator's links win and merge. The reconciler does not query these tables: it folds the same facts from the
compacted directory topics.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from closeloop.contracts.identity import split_ref
from closeloop.identity.catalog import CatalogEntry
from closeloop.identity.directory import Directory
from closeloop.identity.graph import OPERATOR, LinkConflict, preferred_identity_id
from closeloop.identity.names import email_name, fold, is_email

Db: TypeAlias = asyncpg.Connection | asyncpg.Pool


@dataclass(frozen=True)
class LinkedName:
    name: str
    identity_id: str
    account: bool
    origin: str
    last_seen: datetime


@dataclass(frozen=True)
class RecordedConflict:
    names: tuple[str, ...]
    identities: tuple[str, ...]
    origin: str
    last_seen: datetime


def _group(principal: str, aliases: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(n.strip() for n in (principal, *aliases) if n and n.strip()))


async def link_groups(
    conn: asyncpg.Connection, groups: Sequence[tuple[str, Iterable[str]]], origin: str
) -> list[LinkConflict]:
    """Record, for each (principal, aliases), that they name one identity and that the principal is an account.

    Inside a transaction; two statements for the whole batch plus one per conflict. Names already linked keep
    their identity; a group whose names belong to different identities is not merged and is recorded as a conflict.
    """
    named = [_group(p, a) for p, a in groups]
    named = [names for names in named if names]
    if not named:
        return []
    every = sorted({n for names in named for n in names})
    rows = await conn.fetch(
        "SELECT name, identity_id, account FROM identity_links WHERE name = ANY($1::text[]) ORDER BY name FOR UPDATE",
        every,
    )
    known: dict[str, str] = {row["name"]: row["identity_id"] for row in rows}
    accounts = {row["name"] for row in rows if row["account"]}
    conflicts: list[LinkConflict] = []
    new_names: dict[str, tuple[str, bool]] = {}
    now_accounts: set[str] = set()
    for names in named:
        identities = sorted({known[n] for n in names if n in known})
        if len(identities) > 1:
            conflicts.append(LinkConflict(names=tuple(names), identities=tuple(identities), origin=origin))
            continue
        identity = identities[0] if identities else preferred_identity_id(names)
        for position, name in enumerate(names):
            if name not in known:
                known[name] = identity  # later groups in the batch see this link too
                new_names[name] = (identity, position == 0)
        if names[0] in known and names[0] not in accounts and names[0] not in new_names:
            now_accounts.add(names[0])
    if new_names:
        ordered = sorted(new_names.items())
        await conn.execute(
            """INSERT INTO identity_links (name, identity_id, account, origin)
               SELECT n, i, a, $4 FROM unnest($1::text[], $2::text[], $3::boolean[]) AS u(n, i, a)
               ON CONFLICT (name) DO NOTHING""",
            [n for n, _ in ordered],
            [i for _, (i, _) in ordered],
            [a for _, (_, a) in ordered],
            origin,
        )
    if now_accounts:
        await conn.execute(
            "UPDATE identity_links SET account = true, last_seen = now() WHERE name = ANY($1::text[])",
            sorted(now_accounts),
        )
    for conflict in conflicts:
        await conn.execute(
            """INSERT INTO identity_link_conflicts (names, identities, origin) VALUES ($1, $2, $3)
               ON CONFLICT (names, identities) DO UPDATE SET last_seen = now(), origin = EXCLUDED.origin""",
            sorted(conflict.names),
            list(conflict.identities),
            origin,
        )
    return conflicts


def parse_alias_file(document: Mapping[str, Any]) -> dict[str, list[str]]:
    """`{"identities": [{"id": "alice@example.com", "aliases": ["github:user:alice-gh", ...]}]}`."""
    entries = document.get("identities")
    if not isinstance(entries, list):
        raise ValueError("an alias file needs an `identities` list")
    mapping: dict[str, list[str]] = {}
    for position, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise ValueError(f"identities[{position}] is not an object")
        identity = entry.get("id")
        aliases = entry.get("aliases", [])
        if not isinstance(identity, str) or not identity.strip():
            raise ValueError(f"identities[{position}].id must be a non-empty string")
        if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
            raise ValueError(f"identities[{position}].aliases must be a list of non-empty strings")
        mapping.setdefault(identity.strip(), []).extend(a.strip() for a in aliases)
    return mapping


def operator_names(identity: str, aliases: Iterable[str]) -> list[str]:
    """The names an operator's identity entry links: its id (an email becomes `email:<address>`) and aliases."""
    own = identity if ":" in identity else email_name(identity) if is_email(identity) else identity
    return sorted({own, *aliases})


async def link_operator(conn: asyncpg.Connection, mapping: Mapping[str, Iterable[str]]) -> int:
    """The operator's links win: each entry's names join its identity, merging the identities they had."""
    written = 0
    for identity, aliases in mapping.items():
        names = operator_names(identity, aliases)
        await conn.execute(
            """UPDATE identity_links SET identity_id = $2, last_seen = now()
               WHERE identity_id IN (SELECT identity_id FROM identity_links WHERE name = ANY($1::text[]))
                 AND identity_id <> $2""",
            names,
            identity,
        )
        await conn.execute(
            """INSERT INTO identity_links (name, identity_id, account, origin)
               SELECT n, $2, n LIKE '%:user:%' OR n LIKE '%:serviceaccount:%', $3 FROM unnest($1::text[]) AS n
               ON CONFLICT (name) DO UPDATE
               SET identity_id = EXCLUDED.identity_id, origin = EXCLUDED.origin, last_seen = now()""",
            names,
            identity,
            OPERATOR,
        )
        written += len(names)
    return written


def _lookup_names(names: Iterable[str]) -> list[str]:
    """Names as given plus `email:<address>` for bare emails (tickets name people by email)."""
    found: set[str] = set()
    for name in names:
        value = name.strip()
        if value:
            found.add(value)
            if is_email(value) and ":" not in value:
                found.add(email_name(value))
    return sorted(found)


async def identity_of(db: Db, name: str) -> str | None:
    value: str | None = await db.fetchval(
        "SELECT identity_id FROM identity_links WHERE name = ANY($1::text[]) ORDER BY name = $2 DESC LIMIT 1",
        _lookup_names([name]),
        name,
    )
    return value


async def names_of(db: Db, identity_id: str) -> list[LinkedName]:
    rows = await db.fetch(
        "SELECT name, identity_id, account, origin, last_seen FROM identity_links WHERE identity_id = $1 ORDER BY name",
        identity_id,
    )
    return [LinkedName(**dict(row)) for row in rows]


async def linked_names(db: Db, names: Iterable[str]) -> list[str]:
    """Every name of the identities any of `names` belongs to (bare emails included)."""
    rows = await db.fetch(
        """SELECT DISTINCT b.name FROM identity_links a JOIN identity_links b ON b.identity_id = a.identity_id
           WHERE a.name = ANY($1::text[]) ORDER BY b.name""",
        _lookup_names(names),
    )
    return [row["name"] for row in rows]


async def linked_accounts(db: Db, names: Iterable[str]) -> list[str]:
    """The accounts, in every system, of the identities any of `names` belongs to."""
    rows = await db.fetch(
        """SELECT DISTINCT b.name FROM identity_links a JOIN identity_links b ON b.identity_id = a.identity_id
           WHERE a.name = ANY($1::text[]) AND b.account ORDER BY b.name""",
        _lookup_names(names),
    )
    return [row["name"] for row in rows]


async def recorded_conflicts(db: Db, limit: int = 100) -> list[RecordedConflict]:
    rows = await db.fetch(
        "SELECT names, identities, origin, last_seen FROM identity_link_conflicts ORDER BY last_seen DESC LIMIT $1",
        limit,
    )
    return [RecordedConflict(tuple(r["names"]), tuple(r["identities"]), r["origin"], r["last_seen"]) for r in rows]


async def record_resources(
    conn: asyncpg.Connection, entries: Sequence[tuple[str, str | None, Sequence[str]]], origin: str
) -> int:
    """Upsert catalog entries (resource, display name, aliases). A later display name replaces the earlier one (a
    rename at the source); the operator's aliases replace the aliases, an observation's are added."""
    if not entries:
        return 0
    for resource, display_name, aliases in sorted(entries, key=lambda e: e[0]):
        system, ref_type, _ = split_ref(resource)
        await conn.execute(
            """INSERT INTO catalog_resources (resource, system, resource_type, display_name, aliases, origin)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (resource) DO UPDATE SET
                 display_name = COALESCE(EXCLUDED.display_name, catalog_resources.display_name),
                 aliases = CASE WHEN $6 = $7 THEN EXCLUDED.aliases
                           ELSE ARRAY(SELECT DISTINCT unnest(catalog_resources.aliases || EXCLUDED.aliases)) END,
                 origin = CASE WHEN $6 = $7 THEN $7 ELSE catalog_resources.origin END,
                 last_seen = now()""",
            resource,
            system,
            ref_type,
            display_name,
            sorted(set(aliases)),
            origin,
            OPERATOR,
        )
    return len(entries)


async def catalog_entries(db: Db, system: str | None = None) -> list[CatalogEntry]:
    rows = await db.fetch(
        """SELECT resource, display_name, aliases FROM catalog_resources
           WHERE $1::text IS NULL OR system = $1 ORDER BY resource""",
        system,
    )
    return [CatalogEntry(r["resource"], r["display_name"], frozenset(r["aliases"])) for r in rows]


_CANDIDATES_SQL = r"""
SELECT resource, display_name, aliases FROM catalog_resources
WHERE system = $1 AND (
    resource = ANY($2::text[])
    OR lower(regexp_replace(btrim(display_name), '\s+', ' ', 'g')) = ANY($3::text[])
    OR lower(substr(resource, length(system) + length(resource_type) + 3)) = ANY($3::text[])
    OR lower(regexp_replace(resource, '^.*/', '')) = ANY($3::text[])
    OR EXISTS (SELECT 1 FROM unnest(aliases) AS a WHERE lower(regexp_replace(btrim(a), '\s+', ' ', 'g')) = ANY($3::text[])))
ORDER BY resource"""


async def directory_for(
    db: Db,
    directory: Directory,
    *,
    people: Iterable[str] = (),
    system: str | None = None,
    resources: Iterable[str] = (),
) -> Directory:
    """Load into `directory` what resolving `people` and `resources` (names as written, and provisional ids) on
    `system` needs: the people's identities and the catalog entries answering to those names. `directory` carries
    the caller's settings (default types, correlation rules); a decision in a transaction then resolves exactly as
    the reconciler does, without loading the whole graph.
    """
    names = _lookup_names(people)
    if names:
        rows = await db.fetch(
            """SELECT b.name, b.identity_id, b.account, b.origin FROM identity_links a
               JOIN identity_links b ON b.identity_id = a.identity_id WHERE a.name = ANY($1::text[])
               ORDER BY b.identity_id, b.name""",
            names,
        )
        by_identity: dict[str, list[asyncpg.Record]] = {}
        for row in rows:
            by_identity.setdefault(row["identity_id"], []).append(row)
        for identity, members in by_identity.items():
            directory.graph.link(
                [m["name"] for m in members],
                OPERATOR,
                accounts=[m["name"] for m in members if m["account"]],
                identity_id=identity,
            )
    wanted = [r.strip() for r in resources if r and r.strip()]
    if system is not None and wanted:
        spoken = {fold(w) for w in wanted}
        for written in wanted:
            _, sep, rest = written.partition(":")
            if sep:
                spoken.add(fold(rest))
                spoken.add(fold(rest.rsplit(":", 1)[-1]))
        rows = await db.fetch(_CANDIDATES_SQL, system, wanted, sorted(spoken))
        for r in rows:
            directory.catalog.learn(r["resource"], display_name=r["display_name"], aliases=r["aliases"])
    return directory
