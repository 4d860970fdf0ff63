"""Policy at request time: may this approved request be granted, and with which TTL, owner and triggers?

Pure: `Policy.evaluate(request)` returns a `Grant` (what to record) or a `Refusal` (why not). Time is the
ticket's own `occurred_at`, so replaying the same ticket always gives the same answer. The rules are
YAML (closeloop.record's default_policy.yaml, documented there); a request that breaks them is refused with a
reason, never silently fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from closeloop.contracts.entitlements import RevocationTrigger
from closeloop.contracts.identity import EntitlementKey, IdentityKind
from closeloop.record.confirmation import ConfirmationPolicy, policy_document


class _PolicyModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _positive(value: timedelta | None) -> timedelta | None:
    if value is not None and value <= timedelta(0):
        raise ValueError("durations must be positive")
    return value


class Tier(_PolicyModel):
    max_ttl: timedelta
    default_ttl: timedelta | None = None
    recertification_interval: timedelta | None = None

    _check = field_validator("max_ttl", "default_ttl", "recertification_interval")(_positive)

    @model_validator(mode="after")
    def _default_within_max(self) -> Self:
        if self.default_ttl is not None and self.default_ttl > self.max_ttl:
            raise ValueError("default_ttl must not exceed max_ttl")
        return self


class Rule(_PolicyModel):
    name: str = Field(min_length=1)
    tier: str = Field(min_length=1)
    resource: str = "*"
    system: str = "*"
    privilege: str | list[str] = "*"

    def matches(self, key: EntitlementKey) -> bool:
        privileges = [self.privilege] if isinstance(self.privilege, str) else self.privilege
        return (
            fnmatchcase(key.resource, self.resource)
            and fnmatchcase(key.system, self.system)
            and any(fnmatchcase(key.privilege, p.lower()) for p in privileges)
        )


class NhiRules(_PolicyModel):
    require_owner: bool = True
    require_ttl: bool = True
    max_ttl: timedelta | None = None

    _check = field_validator("max_ttl")(_positive)


class HumanRules(_PolicyModel):
    owner_from_approver: bool = True
    require_owner: bool = False


class ExceptionRules(_PolicyModel):
    max_window: timedelta = timedelta(hours=24)
    require_incident_ticket: bool = True
    require_justification: bool = True
    require_reviewer: bool = True

    _check = field_validator("max_window")(_positive)


@dataclass(frozen=True)
class AccessRequest:
    """What an approved ticket asks for, with what the record knows about the principal."""

    key: EntitlementKey
    principal_kind: IdentityKind
    decided_at: datetime  # when the ticket was approved (its event's occurred_at)
    owner: str | None = None
    approvers: tuple[str, ...] = ()  # who approved, in order
    requested_duration: timedelta | None = None
    requested_until: datetime | None = None
    project: str | None = None
    principal_inactive: bool = False
    exception: bool = False
    justification: str | None = None
    incident_ticket: str | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None


@dataclass(frozen=True)
class Grant:
    """An allowed request: what the record holds for it."""

    rule: str
    tier: str
    owner: str | None
    expires_at: datetime | None
    revocation_triggers: tuple[RevocationTrigger, ...]
    recertification_interval: timedelta | None
    exception_window_end: datetime | None = None
    reviewer: str | None = None


@dataclass(frozen=True)
class Refusal:
    """A refused request and the rule it broke, in words for the SOC and the requester."""

    reason: str
    rule: str | None = None


def iso(value: timedelta) -> str:
    """timedelta as ISO 8601 (P7D, PT24H) for reasons people read."""
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = "P" + (f"{days}D" if days else "")
    if hours or minutes or secs:
        text += "T" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{secs}S" if secs else "")
    return text if text != "P" else "PT0S"


class Policy(_PolicyModel):
    tiers: dict[str, Tier]
    rules: list[Rule] = Field(min_length=1)
    nhi: NhiRules = NhiRules()
    humans: HumanRules = HumanRules()
    exceptions: ExceptionRules = ExceptionRules()
    refuse_inactive_principal: bool = True
    confirmation: ConfirmationPolicy = ConfirmationPolicy()

    @model_validator(mode="after")
    def _rules_name_tiers(self) -> Self:
        for rule in self.rules:
            if rule.tier not in self.tiers:
                raise ValueError(f"rule {rule.name!r} names unknown tier {rule.tier!r}")
        return self

    @classmethod
    def load(cls, path: Path | None = None) -> Policy:
        """The policy from `path`, or the packaged default (closeloop.record's default_policy.yaml)."""
        return cls.model_validate(policy_document(path))

    def rule_for(self, key: EntitlementKey) -> Rule | None:
        return next((r for r in self.rules if r.matches(key)), None)

    def evaluate(self, request: AccessRequest) -> Grant | Refusal:
        rule = self.rule_for(request.key)
        if rule is None:
            return Refusal("no policy rule covers this resource and privilege")
        tier = self.tiers[rule.tier]
        nhi = request.principal_kind.is_nhi
        problems: list[str] = []

        if self.refuse_inactive_principal and request.principal_inactive:
            problems.append(f"{request.key.principal} is deactivated, suspended or deleted")

        owner = request.owner
        if nhi:
            if self.nhi.require_owner and not owner:
                problems.append(f"non-human identity ({request.principal_kind.value}) has no owner")
            if owner and owner == request.key.principal:
                problems.append("a non-human identity cannot own itself")
        elif owner is None and self.humans.owner_from_approver and request.approvers:
            owner = request.approvers[0]
        if not nhi and self.humans.require_owner and not owner:
            problems.append("the request names no owner")

        window_end = None
        reviewer = request.approvers[0] if request.approvers else None
        if request.exception:
            window_end, exception_problems = self._exception_window(request, reviewer)
            problems += exception_problems
            expires_at = window_end
        else:
            expires_at, ttl_problems = self._expiry(request, tier, rule, nhi)
            problems += ttl_problems

        if problems:
            return Refusal("; ".join(problems), rule=rule.name)

        triggers = [RevocationTrigger.TICKET]
        if expires_at is not None:
            triggers.append(RevocationTrigger.EXPIRY)
        triggers.append(RevocationTrigger.OWNER_DEPARTURE if nhi else RevocationTrigger.OFFBOARDING)
        if request.project:
            triggers.append(RevocationTrigger.PROJECT_END)
        if request.exception:
            triggers.append(RevocationTrigger.EXCEPTION_WINDOW_END)
        if tier.recertification_interval is not None:
            triggers.append(RevocationTrigger.RECERTIFICATION)
        return Grant(
            rule=rule.name,
            tier=rule.tier,
            owner=owner,
            expires_at=expires_at,
            revocation_triggers=tuple(triggers),
            recertification_interval=tier.recertification_interval,
            exception_window_end=window_end,
            reviewer=reviewer if request.exception else None,
        )

    def _expiry(self, request: AccessRequest, tier: Tier, rule: Rule, nhi: bool) -> tuple[datetime | None, list[str]]:
        start = request.decided_at
        if request.requested_until is not None:
            expires_at: datetime | None = request.requested_until
        elif request.requested_duration is not None:
            expires_at = start + request.requested_duration
        elif nhi and self.nhi.require_ttl:
            return None, ["non-human identity requested no TTL (a duration or an end date is required)"]
        elif tier.default_ttl is not None:
            expires_at = start + tier.default_ttl
        else:
            return None, [f"no TTL requested and tier {rule.tier!r} (rule {rule.name!r}) has no default"]
        assert expires_at is not None  # noqa: S101 - every branch above sets it or returns
        if expires_at <= start:
            return None, ["the requested end date is not after the approval"]
        ttl = expires_at - start
        limit, limit_name = tier.max_ttl, f"tier {rule.tier!r} (rule {rule.name!r})"
        if nhi and self.nhi.max_ttl is not None and self.nhi.max_ttl < limit:
            limit, limit_name = self.nhi.max_ttl, "non-human identities"
        if ttl > limit:
            return None, [f"requested TTL {iso(ttl)} exceeds the maximum {iso(limit)} for {limit_name}"]
        return expires_at, []

    def _exception_window(self, request: AccessRequest, reviewer: str | None) -> tuple[datetime | None, list[str]]:
        rules = self.exceptions
        problems = []
        if rules.require_incident_ticket and not request.incident_ticket:
            problems.append("an exception must name its incident ticket")
        if rules.require_justification and not (request.justification or "").strip():
            problems.append("an exception must give a justification")
        if rules.require_reviewer and not reviewer:
            problems.append("an exception must be approved by a named reviewer")
        end = request.window_end or request.requested_until
        if end is None and request.requested_duration is not None:
            end = (request.window_start or request.decided_at) + request.requested_duration
        if end is None:
            problems.append("an exception must be time-bound (no window end)")
            return None, problems
        start = request.window_start or request.decided_at
        if end <= max(start, request.decided_at):
            problems.append("the exception window has already ended")
        elif end - start > rules.max_window:
            problems.append(f"the exception window {iso(end - start)} exceeds the maximum {iso(rules.max_window)}")
        return end, problems
