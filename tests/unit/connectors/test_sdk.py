"""Connector SDK: deterministic ids, event builders, snapshot grants, dedupe, alias config."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from closeloop.connector_sdk import (
    InMemoryDedupe,
    LiveEntitlement,
    build_grant,
    build_principal_status,
    deterministic_event_id,
    parse_alias_file,
    record_key,
)
from closeloop.connector_sdk.snapshot import snapshot_grant
from closeloop.contracts.codec import decode, encode, kafka_key
from closeloop.contracts.grants import GrantAction, GrantEvent, PrincipalStatusChanged
from closeloop.contracts.identity import IdentityKind
from closeloop.identity.graph import preferred_identity_id

AT = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_event_ids_are_stable_and_distinct() -> None:
    a = deterministic_event_id("okta", "u1", "group.user_membership.add", 0)
    assert a == deterministic_event_id("okta", "u1", "group.user_membership.add", 0)
    assert a != deterministic_event_id("okta", "u1", "group.user_membership.add", 1)
    assert a != deterministic_event_id("okta", "u1", "group.user_membership.remove", 0)
    assert a != deterministic_event_id("entra", "u1", "group.user_membership.add", 0)


def test_build_grant_is_keyed_and_valid_on_the_wire() -> None:
    event = build_grant(
        action="grant",
        principal="acme-iam:user:Zoe@Acme.Example",
        resource="acme-iam:role:billing-admin",
        privilege="Assigned",
        source_system="acme-iam",
        vendor_event_id="evt-1",
        vendor_event_type="role.assigned",
        occurred_at=AT,
        principal_kind=IdentityKind.HUMAN,
        principal_aliases=["email:zoe@acme.example", "email:zoe@acme.example", ""],
        details={"ticket_hint": "RITM0010001"},
    )
    assert str(event.key) == "acme-iam:user:Zoe@Acme.Example|acme-iam:role:billing-admin|assigned"
    assert event.subject == str(event.key)
    assert kafka_key(event) == str(event.key).encode()
    assert event.principal_aliases == ("email:zoe@acme.example",)
    assert event.correlation_id == "acme-iam:evt-1"
    assert decode(encode(event), expected=GrantEvent) == event


def test_build_grant_rejects_non_canonical_references() -> None:
    with pytest.raises(ValueError, match="canonical"):
        build_grant(
            action=GrantAction.GRANT,
            principal="alice",
            resource="x:y:z",
            privilege="p",
            source_system="s",
            vendor_event_id="1",
            vendor_event_type="t",
            occurred_at=AT,
        )


def test_status_events_are_keyed_by_principal() -> None:
    event = build_principal_status(
        principal="okta:user:alice@acme.example",
        status="deactivated",
        source_system="okta",
        vendor_event_id="1",
        vendor_event_type="user.lifecycle.deactivate",
        occurred_at=AT,
    )
    assert kafka_key(event) == b"okta:user:alice@acme.example"
    assert decode(encode(event), expected=PrincipalStatusChanged) == event


def test_snapshot_grants_have_ids_by_entitlement_so_a_republish_is_idempotent() -> None:
    entry = LiveEntitlement("okta:user:a@x.io", "okta:group:00g1", "member", principal_kind=IdentityKind.HUMAN)
    one = snapshot_grant(entry, snapshot_id="s1", source_system="okta", source="okta", observed_at=AT)
    two = snapshot_grant(entry, snapshot_id="s1", source_system="okta", source="okta", observed_at=AT)
    other = snapshot_grant(entry, snapshot_id="s2", source_system="okta", source="okta", observed_at=AT)
    assert one.event_id == two.event_id != other.event_id
    assert one.snapshot_id == "s1"
    assert one.action is GrantAction.GRANT


def test_in_memory_dedupe_is_bounded_and_releasable() -> None:
    dedupe = InMemoryDedupe(max_entries=2)
    assert dedupe.claim("okta", ["a", "b"]) == {"a", "b"}
    assert dedupe.claim("okta", ["a", "c"]) == {"c"}  # a seen; c evicts b (least recently seen)
    assert dedupe.claim("okta", ["b"]) == {"b"}
    dedupe.release("okta", ["b"])
    assert dedupe.claim("okta", ["b"]) == {"b"}
    assert dedupe.claim("github", ["a"]) == {"a"}  # per source


def test_record_key_names_type_and_id() -> None:
    assert record_key("123", "system.api_token.create") == "system.api_token.create|123"


def test_alias_config_parsing() -> None:
    config = parse_alias_file(
        {"identities": [{"id": "alice@acme.example", "aliases": ["github:user:alice-gh", "okta:user:00u1alice"]}]}
    )
    assert config == {"alice@acme.example": ["github:user:alice-gh", "okta:user:00u1alice"]}
    with pytest.raises(ValueError, match="identities"):
        parse_alias_file({"people": []})
    with pytest.raises(ValueError, match=r"aliases"):
        parse_alias_file({"identities": [{"id": "x", "aliases": [""]}]})


def test_email_is_the_preferred_identity_id() -> None:
    assert preferred_identity_id(["okta:user:00u1", "email:alice@acme.example"]) == "alice@acme.example"
    assert preferred_identity_id(["github:user:alice-gh"]) == "github:user:alice-gh"
