"""The identity alias table: one identity's names across systems, resolved to one identity id.

Names are canonical references (`okta:user:alice@example.com`, `okta:user:00u1abc`,
`github:user:alice-gh`, `aws:user:arn:aws:iam::1:user/alice`) or `email:<address>`. Connectors feed
the table from the names each record carries (a login, a vendor id and an email seen together are one
identity); operators feed it from a mapping file for the links no record shows (a GitHub login to an
email). Configured rows win over observed ones, and observations never merge two identities already
known to be different: that is reported as a conflict instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

ALIAS_TABLE = "identity_aliases"
CONFIG_ORIGIN = "config"


@dataclass(frozen=True)
class AliasConflict:
    """Names seen together in one record that the table already gives to different identities."""

    names: tuple[str, ...]
    identities: tuple[str, ...]


def preferred_identity_id(names: Sequence[str]) -> str:
    """An email address is the most portable identity id; otherwise the first (canonical) name."""
    for name in names:
        if name.startswith("email:"):
            return name.removeprefix("email:")
    return names[0]


async def link_aliases(
    conn: asyncpg.Connection, principal: str, aliases: Iterable[str], origin: str
) -> AliasConflict | None:
    """Record that `principal` and `aliases` name one identity. Call inside a transaction."""
    names = list(dict.fromkeys([principal, *(a for a in aliases if a)]))
    if len(names) < 2:
        return None
    rows = await conn.fetch(
        f"SELECT alias, identity_id FROM {ALIAS_TABLE} WHERE alias = ANY($1::text[]) ORDER BY alias FOR UPDATE",  # noqa: S608
        names,
    )
    known = {row["alias"]: row["identity_id"] for row in rows}
    identities = sorted(set(known.values()))
    if len(identities) > 1:
        return AliasConflict(names=tuple(names), identities=tuple(identities))
    identity = identities[0] if identities else preferred_identity_id(names)
    await conn.execute(
        f"""INSERT INTO {ALIAS_TABLE} (alias, identity_id, origin)
            SELECT n, $2, $3 FROM unnest($1::text[]) AS n
            ON CONFLICT (alias) DO UPDATE SET last_seen = now()""",  # noqa: S608
        sorted(names),
        identity,
        origin,
    )
    return None


async def link_alias_groups(
    conn: asyncpg.Connection, groups: Sequence[tuple[str, Iterable[str]]], origin: str
) -> list[AliasConflict]:
    """`link_aliases` for many principals in two statements (one read, one insert). Inside a transaction.

    Names already in the table keep their identity; only new names are written. A group whose names
    already belong to different identities is not merged and comes back as a conflict.
    """
    named = [list(dict.fromkeys([p, *(a for a in aliases if a)])) for p, aliases in groups]
    named = [names for names in named if len(names) > 1]
    if not named:
        return []
    every = sorted({n for names in named for n in names})
    rows = await conn.fetch(
        f"SELECT alias, identity_id FROM {ALIAS_TABLE} WHERE alias = ANY($1::text[]) ORDER BY alias FOR UPDATE",  # noqa: S608
        every,
    )
    known: dict[str, str] = {row["alias"]: row["identity_id"] for row in rows}
    conflicts: list[AliasConflict] = []
    new_names: dict[str, str] = {}
    for names in named:
        identities = sorted({known[n] for n in names if n in known})
        if len(identities) > 1:
            conflicts.append(AliasConflict(names=tuple(names), identities=tuple(identities)))
            continue
        identity = identities[0] if identities else preferred_identity_id(names)
        for name in names:
            if name not in known:
                known[name] = identity  # later groups in the batch see this link too
                new_names[name] = identity
    if new_names:
        ordered = sorted(new_names.items())
        await conn.execute(
            f"""INSERT INTO {ALIAS_TABLE} (alias, identity_id, origin)
                SELECT n, i, $3 FROM unnest($1::text[], $2::text[]) AS u(n, i)
                ON CONFLICT (alias) DO NOTHING""",  # noqa: S608
            [n for n, _ in ordered],
            [i for _, i in ordered],
            origin,
        )
    return conflicts


def parse_alias_config(document: Mapping[str, Any]) -> dict[str, list[str]]:
    """`{"identities": [{"id": "alice@example.com", "aliases": ["github:user:alice-gh", ...]}]}`."""
    entries = document.get("identities")
    if not isinstance(entries, list):
        raise ValueError("alias config needs an `identities` list")
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


async def load_alias_config(conn: asyncpg.Connection, mapping: Mapping[str, Iterable[str]]) -> int:
    """Upsert configured identities (config wins over observations); return the number of names written."""
    written = 0
    for identity, aliases in mapping.items():
        names = sorted({identity if ":" in identity else f"email:{identity}", *aliases})
        await conn.execute(
            f"""INSERT INTO {ALIAS_TABLE} (alias, identity_id, origin)
                SELECT n, $2, $3 FROM unnest($1::text[]) AS n
                ON CONFLICT (alias) DO UPDATE
                SET identity_id = EXCLUDED.identity_id, origin = EXCLUDED.origin, last_seen = now()""",  # noqa: S608
            names,
            identity,
            CONFIG_ORIGIN,
        )
        written += len(names)
    return written


async def resolve_identity(conn: asyncpg.Connection | asyncpg.Pool, name: str) -> str | None:
    """The identity id a name belongs to, or None when the name is unknown."""
    value: str | None = await conn.fetchval(
        f"SELECT identity_id FROM {ALIAS_TABLE} WHERE alias = $1",  # noqa: S608
        name,
    )
    return value


async def aliases_of(conn: asyncpg.Connection | asyncpg.Pool, identity_id: str) -> list[str]:
    rows = await conn.fetch(
        f"SELECT alias FROM {ALIAS_TABLE} WHERE identity_id = $1 ORDER BY alias",  # noqa: S608
        identity_id,
    )
    return [row["alias"] for row in rows]
