"""PostgreSQL: webhook deliveries already accepted, for replay protection that survives restarts and
works across instances.

A delivery is claimed before processing (a short lease), marked done after, and released when processing
failed so the sender's retry is accepted. A done delivery is kept until it could no longer pass the
signature's timestamp check; then `purge_expired` deletes it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import asyncpg

_CLAIM = """
    INSERT INTO intake_webhook_deliveries AS d (source, delivery_id, status, claim_token, expires_at)
    VALUES ($1, $2, 'claimed', $3, now() + make_interval(secs => $4))
    ON CONFLICT (source, delivery_id) DO UPDATE
        SET status = 'claimed', claim_token = EXCLUDED.claim_token, expires_at = EXCLUDED.expires_at,
            first_seen = now()
        WHERE d.expires_at < now()
    RETURNING claim_token
"""
_STATUS = "SELECT status FROM intake_webhook_deliveries WHERE source = $1 AND delivery_id = $2"
_COMPLETE = """
    UPDATE intake_webhook_deliveries
       SET status = 'done', expires_at = GREATEST($4::timestamptz, now())
     WHERE source = $1 AND delivery_id = $2 AND claim_token = $3
"""
_RELEASE = "DELETE FROM intake_webhook_deliveries WHERE source = $1 AND delivery_id = $2 AND claim_token = $3"
_PURGE = "DELETE FROM intake_webhook_deliveries WHERE expires_at < now()"


class ClaimRefusal(StrEnum):
    REPLAYED = "replayed"  # already accepted
    IN_PROGRESS = "in_progress"  # another request is processing the same delivery right now


@dataclass(frozen=True)
class Claim:
    source: str
    delivery_id: str
    token: uuid.UUID


class Deliveries:
    def __init__(self, pool: asyncpg.Pool, lease_s: float) -> None:
        self._pool = pool
        self._lease_s = lease_s

    async def claim(self, source: str, delivery_id: str) -> Claim | ClaimRefusal:
        token = uuid.uuid4()
        async with self._pool.acquire() as conn:
            claimed = await conn.fetchval(_CLAIM, source, delivery_id, token, float(self._lease_s))
            if claimed is not None:
                return Claim(source, delivery_id, token)
            status = await conn.fetchval(_STATUS, source, delivery_id)
        return ClaimRefusal.IN_PROGRESS if status == "claimed" else ClaimRefusal.REPLAYED

    async def complete(self, claim: Claim, keep_until: datetime) -> None:
        await self._pool.execute(_COMPLETE, claim.source, claim.delivery_id, claim.token, keep_until)

    async def release(self, claim: Claim) -> None:
        await self._pool.execute(_RELEASE, claim.source, claim.delivery_id, claim.token)

    async def purge_expired(self) -> int:
        result: str = await self._pool.execute(_PURGE)
        return int(result.rsplit(" ", 1)[-1])
