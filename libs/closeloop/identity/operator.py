"""What operators say about names (the alias file, the catalog file, the CLI): written to PostgreSQL and
announced on the directory topics in one step, so every service and every reconciler worker hears the same."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import yaml
from aiokafka import AIOKafkaProducer

from closeloop.contracts.base import Envelope
from closeloop.contracts.codec import cloudevents_headers, encode, kafka_key
from closeloop.contracts.directory import IdentityLinked, ResourceCatalogued
from closeloop.identity.catalog import parse_catalog_file
from closeloop.identity.graph import OPERATOR
from closeloop.identity.store import link_operator, operator_names, parse_alias_file, record_resources
from closeloop.settings import IdentitySettings

SOURCE = "closeloop/operator"


def read_document(path: Path) -> dict[str, Any]:
    text = path.read_text()
    document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(document, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return document


def link_announcements(mapping: Mapping[str, Sequence[str]]) -> list[IdentityLinked]:
    at, correlation = datetime.now(UTC), str(uuid.uuid4())
    events: list[IdentityLinked] = []
    for identity, aliases in mapping.items():
        names = tuple(operator_names(identity, aliases))
        events.append(
            IdentityLinked.create(
                names=names,
                accounts=tuple(n for n in names if not n.startswith("email:")),
                origin=OPERATOR,
                identity_id=identity,
                occurred_at=at,
                source=SOURCE,
                correlation_id=correlation,
            )
        )
    return events


def catalog_announcements(entries: Sequence[tuple[str, str | None, Sequence[str]]]) -> list[ResourceCatalogued]:
    at, correlation = datetime.now(UTC), str(uuid.uuid4())
    return [
        ResourceCatalogued.create(
            resource=resource,
            display_name=name,
            aliases=tuple(aliases),
            origin=OPERATOR,
            occurred_at=at,
            source=SOURCE,
            correlation_id=correlation,
        )
        for resource, name, aliases in entries
    ]


async def announce(producer: AIOKafkaProducer, topic: str, events: Sequence[Envelope]) -> None:
    futures = [await producer.send(topic, encode(e), key=kafka_key(e), headers=cloudevents_headers(e)) for e in events]
    for future in futures:
        await future


async def stored_announcements(db: asyncpg.Pool) -> tuple[list[IdentityLinked], list[ResourceCatalogued]]:
    """Everything PostgreSQL holds, as announcements: after an upgrade, or to rebuild the compacted topics."""
    at, correlation = datetime.now(UTC), str(uuid.uuid4())
    links: list[IdentityLinked] = []
    rows = await db.fetch(
        "SELECT name, identity_id, account, origin FROM identity_links ORDER BY identity_id, origin, name"
    )
    groups: dict[tuple[str, str], list[asyncpg.Record]] = {}
    for row in rows:
        groups.setdefault((row["identity_id"], row["origin"]), []).append(row)
    for (identity, origin), members in groups.items():
        for start in range(0, len(members), 50):  # an announcement carries at most 50 names
            chunk = members[start : start + 50]
            links.append(
                IdentityLinked.create(
                    names=tuple(m["name"] for m in chunk),
                    accounts=tuple(m["name"] for m in chunk if m["account"]),
                    origin=origin,
                    identity_id=identity,
                    occurred_at=at,
                    source=SOURCE,
                    correlation_id=correlation,
                )
            )
    resources = [
        ResourceCatalogued.create(
            resource=r["resource"],
            display_name=r["display_name"],
            aliases=tuple(r["aliases"][:50]),
            origin=r["origin"],
            occurred_at=at,
            source=SOURCE,
            correlation_id=correlation,
        )
        for r in await db.fetch(
            "SELECT resource, display_name, aliases, origin FROM catalog_resources ORDER BY resource"
        )
    ]
    return links, resources


async def load_alias_file(
    pool: asyncpg.Pool, path: Path, producer: AIOKafkaProducer | None, settings: IdentitySettings
) -> int:
    """Operator links from a file: written (they win), then announced. Returns the number of names written."""
    mapping = parse_alias_file(read_document(path))
    async with pool.acquire() as conn, conn.transaction():
        written = await link_operator(conn, mapping)
    if producer is not None:
        await announce(producer, settings.links_topic, link_announcements(mapping))
    return written


async def load_catalog_file(
    pool: asyncpg.Pool, path: Path, producer: AIOKafkaProducer | None, settings: IdentitySettings
) -> int:
    """Catalog entries from a file (`{resources: [{id, name, aliases}]}`): written, then announced."""
    entries = parse_catalog_file(read_document(path))
    async with pool.acquire() as conn, conn.transaction():
        written = await record_resources(conn, entries, OPERATOR)
    if producer is not None:
        await announce(producer, settings.catalog_topic, catalog_announcements(entries))
    return written
