"""The sweep: every phase in batches until nothing is due, then sleep until the next interval (or the next
expiry, whichever is sooner).

Several workers may sweep the same database at once: each batch locks its rows with SKIP LOCKED, so
workers take disjoint rows and every action happens once. A batch is one transaction, so a worker killed
mid-sweep loses nothing and repeats nothing: the next sweep (of any worker) picks up the rest. The first
sweep at start catches up with everything that fell due while no worker ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from closeloop.logging import get_logger
from expiry import store
from expiry.apply_triggers import resume_open_triggers
from expiry.check_revoke_confirmations import check_revoke_confirmations
from expiry.context import ExpiryContext
from expiry.end_exceptions import end_exceptions
from expiry.enforce_recertification import enforce_recertification
from expiry.expire_entitlements import expire_entitlements
from expiry.send_expiry_notices import send_expiry_notices

log = get_logger(__name__)

Phase = Callable[[ExpiryContext], Awaitable[tuple[int, int]]]

# Revokes first (they are the point), then confirmations of earlier revokes, then the announcements.
PHASES: tuple[tuple[str, Phase], ...] = (
    ("expire", expire_entitlements),
    ("exceptions", end_exceptions),
    ("confirmations", check_revoke_confirmations),
    ("notices", send_expiry_notices),
    ("recertification", enforce_recertification),
)
SLOW_PHASES = frozenset({"recertification"})
MIN_WAIT_S = 0.05


@dataclass
class SweepReport:
    started_at: datetime
    actions: dict[str, int] = field(default_factory=dict)
    triggers_resumed: int = 0

    @property
    def total(self) -> int:
        return sum(self.actions.values())


class Sweeper:
    def __init__(self, ctx: ExpiryContext, interval_s: float, *, slow_phase_interval_s: float | None = None) -> None:
        self._ctx = ctx
        self._interval_s = interval_s
        # Recertification works in days and scans every active row: it runs at most this often.
        self._slow_interval_s = slow_phase_interval_s if slow_phase_interval_s is not None else interval_s
        self._slow_last_run: float | None = None
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self.last_success: float | None = None  # monotonic time of the last complete sweep

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def sweep_once(self) -> SweepReport:
        ctx = self._ctx
        report = SweepReport(started_at=ctx.clock.now())
        report.triggers_resumed = await resume_open_triggers(ctx)
        slow_due = self._slow_last_run is None or time.monotonic() - self._slow_last_run >= self._slow_interval_s
        for name, phase in PHASES:
            if name in SLOW_PHASES:
                if not slow_due:
                    continue
                self._slow_last_run = time.monotonic()
            started = time.perf_counter()
            report.actions[name] = await drain(ctx, phase, stop=self._stopping)
            ctx.metrics.sweep_seconds.labels(ctx.metrics.service, name).observe(time.perf_counter() - started)
            if self._stopping.is_set():
                break
        else:
            self.last_success = time.monotonic()
            ctx.metrics.last_sweep.labels(ctx.metrics.service).set(time.time())
        return report

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                report = await self.sweep_once()
                if report.total or report.triggers_resumed:
                    log.info("sweep", actions=report.actions, triggers_resumed=report.triggers_resumed)
            except Exception as exc:
                # A failed sweep is retried at the next interval; readiness turns red if none succeeds.
                self._ctx.metrics.transient("sweep")
                log.warning("sweep failed; retrying next interval", error_type=type(exc).__name__, error=str(exc))
            await self._sleep()

    async def _sleep(self) -> None:
        wait = self._interval_s
        with contextlib.suppress(Exception):  # the hint is an optimisation; the interval still applies
            async with self._ctx.pool.acquire() as conn:
                due = await store.next_expiry(conn, self._ctx.clock.now())
            if due is not None:
                wait = min(wait, max((due - self._ctx.clock.now()).total_seconds(), MIN_WAIT_S))
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), wait)

    def healthy(self, max_age_s: float) -> bool:
        return self.last_success is not None and time.monotonic() - self.last_success <= max_age_s


async def drain(ctx: ExpiryContext, phase: Phase, *, stop: asyncio.Event | None = None) -> int:
    """Run one phase batch after batch until a batch is short (nothing left that is not locked by
    another worker) or changes nothing (never spin on rows it cannot act on)."""
    total = 0
    while stop is None or not stop.is_set():
        locked, acted = await phase(ctx)
        total += acted
        if locked < ctx.policy.batch_size or acted == 0:
            break
    return total
