"""What a parser receives besides the record, and what it returns."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from closeloop.connector_sdk.events import build_grant, build_principal_status
from closeloop.contracts.codec import describe_validation_error
from closeloop.contracts.grants import (
    Actor,
    CredentialFact,
    GrantAction,
    GrantEvent,
    PrincipalStatus,
    PrincipalStatusChanged,
)
from closeloop.contracts.identity import IdentityKind
from connectors.errors import MalformedRecord
from connectors.identity import DEFAULT_CLASSIFIER, IdentityClassifier
from connectors.timestamps import first_timestamp

ConnectorEvent = GrantEvent | PrincipalStatusChanged


@dataclass(frozen=True)
class StateEntry:
    """Last known state of a vendor object (None once deleted) and the vendor time it was observed."""

    value: Mapping[str, Any] | None
    observed_at: datetime


@dataclass(frozen=True)
class ParseContext:
    """Configuration and cached state a parse needs; parsers never do I/O."""

    classifier: IdentityClassifier = DEFAULT_CLASSIFIER
    # Used as the event time only for records that carry no time at all (some test corpora strip it).
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Okta org name for API-token resources (`okta:org:<org>`); without it the token's creator is used.
    okta_org: str | None = None
    # Kubernetes audit events do not name their cluster; the collector says which one this is.
    k8s_cluster: str = "default"
    # TokenRequests by these users are routine (kubelets refresh projected tokens hourly): not grants.
    k8s_ignored_token_requesters: re.Pattern[str] | None = re.compile(r"^system:node:")
    # Cached object state for the record's `state_keys` (stateful sources: k8s, cloudtrail, vault).
    state: Mapping[str, StateEntry] = field(default_factory=dict)

    def with_state(self, state: Mapping[str, StateEntry]) -> ParseContext:
        return replace(self, state=state)


@dataclass
class ParseResult:
    events: list[ConnectorEvent] = field(default_factory=list)
    # Why a valid record yields no event (counted by reason); None when it yielded events.
    skipped: str | None = None
    state_updates: dict[str, StateEntry] = field(default_factory=dict)

    @classmethod
    def skip(cls, why: str) -> ParseResult:
        return cls(skipped=why)


@dataclass(frozen=True)
class RecordIdentity:
    """Who a vendor record is: its id (or content hash) and its event type."""

    vendor_event_id: str
    vendor_event_type: str


class RecordEvents:
    """Builds the events of one vendor record: shared envelope facts, numbered in order."""

    def __init__(
        self,
        *,
        source_system: str,
        identity: RecordIdentity,
        occurred_at: datetime,
        source: str,
        actor: Actor | None,
        details: Mapping[str, str] | None = None,
    ) -> None:
        self.source_system = source_system
        self.identity = identity
        self.occurred_at = occurred_at
        self.source = source
        self.actor = actor
        self.details = dict(details or {})
        self.events: list[ConnectorEvent] = []

    def add(
        self,
        action: GrantAction,
        principal: str,
        resource: str,
        privilege: str,
        *,
        principal_kind: IdentityKind = IdentityKind.UNKNOWN,
        principal_aliases: Iterable[str] = (),
        resource_type: str | None = None,
        resource_name: str | None = None,
        credential: CredentialFact | None = None,
        expires_at: datetime | None = None,
        details: Mapping[str, str] | None = None,
    ) -> None:
        try:
            event = build_grant(
                action=action,
                principal=principal,
                resource=resource,
                privilege=privilege,
                source_system=self.source_system,
                vendor_event_id=self.identity.vendor_event_id,
                vendor_event_type=self.identity.vendor_event_type,
                occurred_at=self.occurred_at,
                index=len(self.events),
                source=self.source,
                principal_kind=principal_kind,
                principal_aliases=principal_aliases,
                resource_type=resource_type,
                resource_name=resource_name,
                actor=self.actor,
                credential=credential,
                expires_at=expires_at,
                details={**self.details, **(details or {})},
            )
        except ValidationError as exc:
            raise MalformedRecord(f"cannot build a grant event: {describe_validation_error(exc)}") from exc
        except ValueError as exc:
            raise MalformedRecord(f"cannot build a grant event: {exc}") from exc
        self.events.append(event)

    def grant(self, principal: str, resource: str, privilege: str, **kwargs: Any) -> None:
        self.add(GrantAction.GRANT, principal, resource, privilege, **kwargs)

    def revoke(self, principal: str, resource: str, privilege: str, **kwargs: Any) -> None:
        self.add(GrantAction.REVOKE, principal, resource, privilege, **kwargs)

    def status(
        self,
        principal: str,
        status: PrincipalStatus,
        *,
        principal_kind: IdentityKind = IdentityKind.UNKNOWN,
        principal_aliases: Iterable[str] = (),
        credential: CredentialFact | None = None,
    ) -> None:
        try:
            event = build_principal_status(
                principal=principal,
                status=status,
                source_system=self.source_system,
                vendor_event_id=self.identity.vendor_event_id,
                vendor_event_type=self.identity.vendor_event_type,
                occurred_at=self.occurred_at,
                index=len(self.events),
                source=self.source,
                principal_kind=principal_kind,
                principal_aliases=principal_aliases,
                actor=self.actor,
                credential=credential,
            )
        except ValidationError as exc:
            raise MalformedRecord(f"cannot build a status event: {describe_validation_error(exc)}") from exc
        except ValueError as exc:
            raise MalformedRecord(f"cannot build a status event: {exc}") from exc
        self.events.append(event)

    def result(self, skipped_if_empty: str = "no_entitlement_change") -> ParseResult:
        return ParseResult(events=self.events, skipped=None if self.events else skipped_if_empty)


def event_time(ctx: ParseContext, *candidates: object) -> tuple[datetime, dict[str, str]]:
    """The record's time from the first present candidate; the receive time (noted in details) if none."""
    try:
        found = first_timestamp(*candidates)
    except ValueError as exc:
        raise MalformedRecord(f"bad event time: {exc}") from exc
    if found is None:
        return ctx.received_at, {"time_source": "received"}
    return found, {}
