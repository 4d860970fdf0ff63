"""Periodically delete delivery ids that can no longer pass the signature check (or the Jira window)."""

from __future__ import annotations

import asyncio
import contextlib

from closeloop.consumer_loop import is_transient
from closeloop.logging import get_logger
from request_intake.deliveries import Deliveries

log = get_logger(__name__)


class PurgeDeliveries:
    def __init__(self, deliveries: Deliveries, interval_s: float) -> None:
        self._deliveries = deliveries
        self._interval_s = interval_s
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                purged = await self._deliveries.purge_expired()
                if purged:
                    log.info("expired delivery ids purged", count=purged)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("purge failed; will retry", error_type=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval_s)
