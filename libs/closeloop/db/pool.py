"""asyncpg pools with a statement timeout, created with retries so a service can start before its database."""

from __future__ import annotations

import asyncpg
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from closeloop.settings import DatabaseSettings

CONNECT_ERRORS = (OSError, asyncpg.CannotConnectNowError, asyncpg.PostgresConnectionError)


async def create_pool(settings: DatabaseSettings, dsn: str | None = None, wait_s: float = 60.0) -> asyncpg.Pool:
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(CONNECT_ERRORS),
        wait=wait_exponential(multiplier=0.2, max=5),
        stop=stop_after_delay(wait_s),
        reraise=True,
    ):
        with attempt:
            pool = await asyncpg.create_pool(
                dsn or settings.url.get_secret_value(),
                min_size=settings.pool_min_size,
                max_size=settings.pool_max_size,
                server_settings={
                    "statement_timeout": str(settings.statement_timeout_ms),
                    "application_name": "closeloop",
                },
            )
    return pool
