"""Snapshots: a full listing of the live entitlements of one scope, framed by start / end markers.

The reconciler is partitioned by entitlement key, so every partition's consumer must see where a
snapshot starts and ends: the `started` and `completed` markers are written to every partition of the
grants topic (each copy with its own event id). The listed grants carry the `snapshot_id` and go out
keyed by entitlement key, between the markers. After `completed`, a consumer may treat any live
entitlement of the scope that the snapshot did not list, and that is older than the `started` marker,
as gone at the source.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from closeloop.connector_sdk.events import build_grant, deterministic_event_id
from closeloop.connector_sdk.publisher import GrantPublisher
from closeloop.contracts.grants import CredentialFact, GrantAction, GrantEvent, SnapshotMarker, SnapshotPhase
from closeloop.contracts.identity import EntitlementKey, IdentityKind

SNAPSHOT_EVENT_TYPE = "snapshot"


@dataclass(frozen=True)
class LiveEntitlement:
    """One entitlement that is live at the source right now."""

    principal: str
    resource: str
    privilege: str
    principal_kind: IdentityKind = IdentityKind.UNKNOWN
    principal_aliases: tuple[str, ...] = ()
    resource_type: str | None = None
    resource_name: str | None = None
    credential: CredentialFact | None = None
    expires_at: datetime | None = None
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SnapshotResult:
    snapshot_id: str
    grant_count: int
    partitions: tuple[int, ...]


def _marker(
    snapshot_id: str,
    phase: SnapshotPhase,
    partition: int,
    *,
    source_system: str,
    scope: str,
    source: str,
    at: datetime,
    grant_count: int | None,
) -> SnapshotMarker:
    marker: SnapshotMarker = SnapshotMarker.create(
        event_id=deterministic_event_id(source_system, f"snapshot:{snapshot_id}", f"marker.{phase}", partition),
        occurred_at=at,
        source=source,
        correlation_id=f"snapshot:{snapshot_id}"[:200],
        snapshot_id=snapshot_id,
        phase=phase,
        source_system=source_system,
        scope=scope,
        grant_count=grant_count,
    )
    return marker


def snapshot_grant(
    entry: LiveEntitlement, *, snapshot_id: str, source_system: str, source: str, observed_at: datetime
) -> GrantEvent:
    key = EntitlementKey(principal=entry.principal, resource=entry.resource, privilege=entry.privilege)
    return build_grant(
        action=GrantAction.GRANT,
        principal=key.principal,
        resource=key.resource,
        privilege=key.privilege,
        source_system=source_system,
        vendor_event_id=f"snapshot:{snapshot_id}",
        vendor_event_type=SNAPSHOT_EVENT_TYPE,
        # Keyed by entitlement rather than position, so re-publishing a snapshot yields the same ids.
        event_id=deterministic_event_id(source_system, f"snapshot:{snapshot_id}", str(key), 0),
        occurred_at=observed_at,
        source=source,
        principal_kind=entry.principal_kind,
        principal_aliases=entry.principal_aliases,
        resource_type=entry.resource_type,
        resource_name=entry.resource_name,
        credential=entry.credential,
        expires_at=entry.expires_at,
        details=entry.details,
        snapshot_id=snapshot_id,
        correlation_id=f"snapshot:{snapshot_id}",
    )


async def _entries(
    source: Iterable[LiveEntitlement] | AsyncIterable[LiveEntitlement],
) -> AsyncIterable[LiveEntitlement]:
    if isinstance(source, AsyncIterable):
        async for item in source:
            yield item
    else:
        for item in source:
            yield item


async def publish_snapshot(
    publisher: GrantPublisher,
    *,
    source_system: str,
    scope: str,
    entitlements: Iterable[LiveEntitlement] | AsyncIterable[LiveEntitlement],
    snapshot_id: str | None = None,
    source: str | None = None,
    observed_at: datetime | None = None,
    batch_size: int = 500,
) -> SnapshotResult:
    """Publish `started` on every partition, the listed grants, then `completed` with the count.

    If the listing fails half-way no `completed` marker is written, so consumers never sweep on a
    partial listing. Returns once every record is durably written.
    """
    snapshot_id = snapshot_id or str(uuid.uuid4())
    source = source or source_system
    observed_at = observed_at or datetime.now(UTC)
    key = f"snapshot:{snapshot_id}".encode()
    partitions = await publisher.partitions()

    started = {
        p: _marker(
            snapshot_id,
            SnapshotPhase.STARTED,
            p,
            source_system=source_system,
            scope=scope,
            source=source,
            at=observed_at,
            grant_count=None,
        )
        for p in partitions
    }
    await publisher.publish_to_every_partition(started, key)

    count = 0
    batch: list[GrantEvent] = []
    async for entry in _entries(entitlements):
        batch.append(
            snapshot_grant(
                entry, snapshot_id=snapshot_id, source_system=source_system, source=source, observed_at=observed_at
            )
        )
        if len(batch) >= batch_size:
            await publisher.publish(batch)
            count += len(batch)
            batch = []
    if batch:
        await publisher.publish(batch)
        count += len(batch)

    completed = {
        p: _marker(
            snapshot_id,
            SnapshotPhase.COMPLETED,
            p,
            source_system=source_system,
            scope=scope,
            source=source,
            at=datetime.now(UTC),
            grant_count=count,
        )
        for p in partitions
    }
    await publisher.publish_to_every_partition(completed, key)
    return SnapshotResult(snapshot_id=snapshot_id, grant_count=count, partitions=tuple(partitions))
