"""Connector SDK: everything an IAM system needs to publish grant events closeloop can join on.

A connector (ours or a vendor's own) turns each change it observes into a `GrantEvent` (or a
`PrincipalStatusChanged`), keys it by its canonical entitlement key, and publishes it durably on
`iam.grants.v1`. Full listings of a scope go out as snapshots framed by start / end markers on every
partition. Event ids are derived from the vendor record, so a record delivered twice yields the same
ids and every consumer can drop the copy; `PostgresDedupe` also keeps the copy from being published.

The contract is documented in `docs/connector-contract.md` and in the committed JSON Schema
(`closeloop/contracts/jsonschema/iam.grant.changed.v1.schema.json`).
"""

from closeloop.connector_sdk.dedupe import InMemoryDedupe, PostgresDedupe, claim_record_ids
from closeloop.connector_sdk.events import (
    build_grant,
    build_principal_status,
    correlation_for,
    deterministic_event_id,
    record_key,
)
from closeloop.connector_sdk.publisher import GrantPublisher
from closeloop.connector_sdk.snapshot import LiveEntitlement, SnapshotResult, publish_snapshot
from closeloop.identity.graph import LinkConflict
from closeloop.identity.store import identity_of, link_groups, linked_names, parse_alias_file

__all__ = [
    "GrantPublisher",
    "InMemoryDedupe",
    "LinkConflict",
    "LiveEntitlement",
    "PostgresDedupe",
    "SnapshotResult",
    "build_grant",
    "build_principal_status",
    "claim_record_ids",
    "correlation_for",
    "deterministic_event_id",
    "identity_of",
    "link_groups",
    "linked_names",
    "parse_alias_file",
    "publish_snapshot",
    "record_key",
]
