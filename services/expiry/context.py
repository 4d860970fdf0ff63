"""What every expiry handler needs: the pool, the clock, the policy derived from settings, topics, metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import asyncpg

from closeloop.contracts.commands import ProvisioningCommand
from closeloop.contracts.entitlements import TicketRef
from closeloop.record import (
    Cause,
    ConfirmationPolicy,
    EntitlementRecord,
    RecordTopics,
    RecordTransaction,
    RevokeRequest,
    begin_revoke,
    begin_revokes,
    record_transaction,
)
from closeloop.settings import PolicySettings
from expiry.backoff import RetrySchedule
from expiry.clock import Clock, SystemClock
from expiry.metrics import ExpiryMetrics
from expiry.planning import RevokeDecision
from expiry.recertification import RecertPolicy
from expiry.settings import ExpirySettings

ACTOR = "expiry"
CONSUMER = "expiry"  # name under which input event ids are claimed in processed_events


@dataclass(frozen=True)
class ExpiryPolicy:
    # How long a source has to confirm a revoke, per executor: the policy file every service reads.
    confirmation: ConfirmationPolicy
    notice_offsets: tuple[timedelta, ...]
    retries: RetrySchedule
    recert: RecertPolicy
    batch_size: int = 500

    @classmethod
    def from_settings(cls, settings: ExpirySettings, confirmation: ConfirmationPolicy | None = None) -> ExpiryPolicy:
        """The policy from settings; confirmation windows from the policy file (`CLOSELOOP_POLICY_FILE`)."""
        return cls(
            confirmation=confirmation or ConfirmationPolicy.load(PolicySettings().file),
            notice_offsets=settings.notice_offsets,
            retries=RetrySchedule(
                initial=settings.retry_initial,
                factor=settings.retry_factor,
                maximum=settings.retry_max,
                max_attempts=settings.retry_max_attempts,
            ),
            recert=RecertPolicy(
                interval_human=settings.recert_interval_human,
                interval_nhi=settings.recert_interval_nhi,
                due_lead=settings.recert_due_lead,
                overdue_grace=settings.recert_overdue_grace,
                revoke_after=settings.recert_revoke_after,
            ),
            batch_size=settings.sweep_batch_size,
        )


@dataclass
class ExpiryContext:
    pool: asyncpg.Pool
    policy: ExpiryPolicy
    topics: RecordTopics
    clock: Clock = field(default_factory=SystemClock)
    metrics: ExpiryMetrics = field(default_factory=ExpiryMetrics)

    @classmethod
    def from_settings(
        cls,
        settings: ExpirySettings,
        pool: asyncpg.Pool,
        *,
        confirmation: ConfirmationPolicy | None = None,
        clock: Clock | None = None,
        metrics: ExpiryMetrics | None = None,
    ) -> ExpiryContext:
        return cls(
            pool=pool,
            policy=ExpiryPolicy.from_settings(settings, confirmation),
            topics=RecordTopics(
                entitlements=settings.entitlements_topic,
                commands=settings.commands_topic,
                grants=settings.grants_topic,
            ),
            clock=clock or SystemClock(),
            metrics=metrics or ExpiryMetrics(),
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[RecordTransaction]:
        """One record transaction stamped by this context's clock."""
        async with record_transaction(self.pool, actor=ACTOR, topics=self.topics, clock=self.clock.now) as tx:
            yield tx

    async def revoke(
        self,
        tx: RecordTransaction,
        record: EntitlementRecord,
        decision: RevokeDecision,
        *,
        cause: Cause,
        ticket: TicketRef | None = None,
    ) -> ProvisioningCommand | None:
        """Start the revoke `decision` calls for, with the deadline of the entitlement's executor."""
        return await begin_revoke(
            tx,
            record,
            decision.trigger,
            confirmation=self.policy.confirmation,
            cause=cause,
            reason=decision.reason,
            change=decision.change,
            ticket=ticket,
        )

    async def revoke_many(
        self, tx: RecordTransaction, decisions: Sequence[tuple[EntitlementRecord, RevokeDecision, Cause]]
    ) -> list[ProvisioningCommand | None]:
        """`revoke` for a batch of locked records (one statement for all their rows)."""
        requests = [RevokeRequest(r, d.trigger, cause, d.reason, d.change) for r, d, cause in decisions]
        return await begin_revokes(tx, requests, confirmation=self.policy.confirmation)
