"""HTTP calls to IAM APIs with retries: 429, 5xx and connection errors are retried with exponential
backoff (tenacity), honouring Retry-After and rate-limit reset headers up to the backoff ceiling;
other errors are final. Tokens travel in headers only and never appear in logs or error details."""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt, wait_exponential

from closeloop.logging import get_logger

log = get_logger(__name__)
MAX_DETAIL = 300


class RetryableHttpError(Exception):
    def __init__(self, status: int, retry_after: float | None, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.retry_after = retry_after


class HttpCallFailed(Exception):
    """A final failure (4xx other than the accepted ones, or retries exhausted)."""


@dataclass(frozen=True)
class RetryPolicy:
    """Timeout per request, attempts per call, and the exponential backoff between attempts."""

    timeout_s: float = 15.0
    max_attempts: int = 5
    backoff_base_s: float = 0.5
    max_backoff_s: float = 30.0


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: Any


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from Retry-After (delay-seconds or HTTP-date), or from a rate-limit reset epoch
    (Okta, GitHub); None when absent or unreadable. Never NaN, infinite or negative (a `nan` once made
    the backoff sleep forever); callers cap it at their backoff ceiling."""
    clock = now if now is not None else time.time()
    value = headers.get("Retry-After")
    if value is not None:
        seconds = _finite(value)
        if seconds is None:
            seconds = _http_date(value, clock)
        return None if seconds is None else max(seconds, 0.0)
    for name in ("X-Rate-Limit-Reset", "X-RateLimit-Reset"):
        reset = headers.get(name)
        if reset is not None:
            epoch = _finite(reset)
            return None if epoch is None else max(epoch - clock, 0.0)
    return None


def _finite(text: str) -> float | None:
    text = text.strip()
    if len(text) > 32:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _http_date(text: str, now: float) -> float | None:
    try:
        when = parsedate_to_datetime(text.strip()[:64])
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # an HTTP-date is GMT
        when = when.replace(tzinfo=UTC)
    return when.timestamp() - now


class RetryingHttp:
    def __init__(self, base_url: str, headers: Mapping[str, str], retry: RetryPolicy | None = None) -> None:
        retry = retry or RetryPolicy()
        self._base_url = base_url.rstrip("/")
        self._headers = dict(headers)
        self._timeout = aiohttp.ClientTimeout(total=retry.timeout_s)
        self._max_attempts = retry.max_attempts
        self._max_backoff_s = retry.max_backoff_s
        self._exponential = wait_exponential(multiplier=retry.backoff_base_s, max=retry.max_backoff_s)
        self._session: aiohttp.ClientSession | None = None

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetryableHttpError) and exc.retry_after is not None:
            return min(exc.retry_after, self._max_backoff_s)
        return float(self._exponential(state))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        ok: Collection[int] = (200, 201, 204),
        accept: Collection[int] = (),
        retry_forbidden_when_limited: bool = False,
    ) -> HttpResponse:
        """Send with retries. `ok` and `accept` statuses return; anything else raises HttpCallFailed."""
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type((RetryableHttpError, aiohttp.ClientError, TimeoutError)),
                stop=stop_after_attempt(self._max_attempts),
                wait=self._wait,
                reraise=True,
                before_sleep=lambda s: log.warning(
                    "IAM API call retrying",
                    method=method,
                    path=path,
                    attempt=s.attempt_number,
                    error=str(s.outcome.exception()) if s.outcome else None,
                ),
            ):
                with attempt:
                    return await self._once(method, path, json, ok, accept, retry_forbidden_when_limited)
        except RetryableHttpError as exc:
            raise HttpCallFailed(f"gave up after {self._max_attempts} attempts: {exc}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise HttpCallFailed(f"gave up after {self._max_attempts} attempts: {type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable: AsyncRetrying either returns or raises")

    async def _once(
        self,
        method: str,
        path: str,
        json: Any,
        ok: Collection[int],
        accept: Collection[int],
        retry_forbidden_when_limited: bool,
    ) -> HttpResponse:
        async with self._client().request(method, self._base_url + path, json=json) as response:
            text = await response.text()
            if response.status in ok or response.status in accept:
                body: Any = None
                if text and response.content_type == "application/json":
                    body = await response.json()
                return HttpResponse(response.status, body)
            detail = text[:MAX_DETAIL]
            limited = response.headers.get("X-RateLimit-Remaining") == "0"
            if (
                response.status == 429
                or response.status >= 500
                or (response.status == 403 and retry_forbidden_when_limited and limited)
            ):
                raise RetryableHttpError(response.status, retry_after_seconds(response.headers), detail)
            raise HttpCallFailed(f"HTTP {response.status} from {method} {path}: {detail}")
