"""What every handler needs, handed in by the composition root (bootstrap) or a test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

import asyncpg

from closeloop.contracts.base import utcnow
from closeloop.contracts.identity import EntitlementKey
from closeloop.record import RecordTopics
from closeloop.settings import IdentitySettings
from provisioning.policy import Policy

ACTOR = "provisioning"


class Unprocessable(Exception):
    """The input is valid but can never be applied (e.g. an approved ticket that names no entitlement)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    why: str | None = None
    events: int = 0
    commands: int = 0

    @classmethod
    def duplicate(cls) -> Result:
        return cls(Outcome.DUPLICATE)

    @classmethod
    def skipped(cls, why: str) -> Result:
        return cls(Outcome.SKIPPED, why)


@dataclass(frozen=True)
class Provisioning:
    """The handlers' dependencies: the database, the policy, where events go, and the clock."""

    pool: asyncpg.Pool
    policy: Policy
    topics: RecordTopics = field(default_factory=RecordTopics)
    consumer: str = "provisioning"
    actor: str = ACTOR
    reverify_after: timedelta = timedelta(hours=1)
    clock: Callable[[], datetime] = utcnow
    # How names resolve (default resource types, correlation rules), shared with every service.
    identity: IdentitySettings = field(default_factory=IdentitySettings)

    def confirm_window(self, key: EntitlementKey, *, revoke: bool) -> timedelta:
        """The deadline of `key`'s executor, from the confirmation policy every service reads."""
        return self.policy.confirmation.window(key, revoke=revoke)
