"""HTTP ingress: `POST /v1/hooks/<source>` on the same app as /healthz, /readyz and /metrics.

Okta event hooks authenticate with the shared secret Okta sends verbatim in `Authorization`, and are
verified once with a GET carrying `X-Okta-Verification-Challenge`. Every other source (Kubernetes audit
webhook backend, EventBridge API destinations, forwarders) sends `Authorization: Bearer <hook secret>`.
Secrets are compared in constant time; a source without a configured secret refuses every request.
The reply is 200 only after the events are durably in Kafka; 413 above the body limit; 422 (problem+json,
and the body dead-lettered) when nothing in the body is a valid record; 503 when Kafka or PostgreSQL
is unavailable, so the sender retries.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp import web
from aiokafka.errors import KafkaError
from pydantic import SecretStr

from closeloop.logging import get_logger
from connectors.envelopes import MalformedBody, body_records
from connectors.ingest_records import IngestRecords, Origin

log = get_logger(__name__)
PROBLEM_TYPE = "application/problem+json"
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    KafkaError,
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
)


def problem(status: int, title: str, detail: str, **extra: Any) -> web.Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return web.json_response(body, status=status, content_type=PROBLEM_TYPE)


def secret_matches(presented: str | None, secret: SecretStr | None) -> bool:
    if not presented or secret is None:
        return False
    expected = secret.get_secret_value().encode()
    if not expected:  # settings never let an empty secret through; an empty one must still match nothing
        return False
    candidates = [presented]
    if presented[:7].lower() == "bearer ":
        candidates.append(presented[7:].strip())
    # Every candidate is compared (no early exit on the first), in constant time.
    results = [hmac.compare_digest(c.encode(), expected) for c in candidates]
    return any(results)


class HookRoutes:
    def __init__(
        self,
        ingest: IngestRecords,
        *,
        sources: list[str],
        okta_secret: SecretStr | None,
        hook_secret: SecretStr | None,
        max_body_bytes: int,
    ) -> None:
        self._ingest = ingest
        self._sources = set(sources)
        self._okta_secret = okta_secret
        self._hook_secret = hook_secret
        self._max_body_bytes = max_body_bytes

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/v1/hooks/okta", self.okta_verification)
        app.router.add_post("/v1/hooks/{source}", self.receive)

    def _secret_for(self, source: str) -> SecretStr | None:
        return self._okta_secret if source == "okta" else self._hook_secret

    def _authenticate(self, request: web.Request, source: str) -> web.Response | None:
        secret = self._secret_for(source)
        if secret is None:
            return problem(503, "Hook not configured", f"no secret is configured for the {source} hook")
        if not secret_matches(request.headers.get("Authorization"), secret):
            response = problem(401, "Unauthorized", "missing or wrong hook secret")
            response.headers["WWW-Authenticate"] = 'Bearer realm="closeloop-connectors"'
            return response
        return None

    async def okta_verification(self, request: web.Request) -> web.Response:
        if "okta" not in self._sources:
            return problem(404, "Unknown hook", "the okta hook is not enabled")
        refused = self._authenticate(request, "okta")
        if refused is not None:
            return refused
        challenge = request.headers.get("X-Okta-Verification-Challenge")
        if not challenge:
            return problem(400, "Missing challenge", "X-Okta-Verification-Challenge header is required")
        return web.json_response({"verification": challenge})

    async def receive(self, request: web.Request) -> web.Response:
        source = request.match_info["source"]
        if source not in self._sources:
            return problem(404, "Unknown hook", f"no hook for source {source!r}")
        refused = self._authenticate(request, source)
        if refused is not None:
            return refused
        if request.content_length is not None and request.content_length > self._max_body_bytes:
            return problem(413, "Body too large", f"the limit is {self._max_body_bytes} bytes")
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return problem(413, "Body too large", f"the limit is {self._max_body_bytes} bytes")
        origin = Origin(kind="hook", detail=request.path)
        return await self._unavailable_is_503(lambda: self.ingest_body(source, raw, origin))

    async def ingest_body(self, source: str, raw: bytes, origin: Origin) -> web.Response:
        """Parse, ingest and answer for one authenticated body (outages propagate: see `receive`)."""
        try:
            records = body_records(self._ingest.connector(source), raw)
        except MalformedBody as exc:
            await self._ingest.reject_body(source, raw, exc.reason, origin)
            return problem(422, "Malformed body", exc.reason, dead_lettered=1)
        single = Origin(kind=origin.kind, detail=origin.detail, raw=raw) if len(records) == 1 else origin
        summary = await self._ingest(source, records, single)
        if summary.received and summary.dead_lettered == summary.received:
            return problem(
                422,
                "Malformed records",
                "; ".join(summary.rejections[:5]),
                dead_lettered=summary.dead_lettered,
            )
        return web.json_response(summary.as_dict())

    async def _unavailable_is_503(self, handle: Callable[[], Awaitable[web.Response]]) -> web.Response:
        try:
            return await handle()
        except UNAVAILABLE_ERRORS as exc:
            log.warning("hook could not be processed; asking the sender to retry", error_type=type(exc).__name__)
            response = problem(503, "Temporarily unavailable", "the event store is unavailable; retry later")
            response.headers["Retry-After"] = "5"
            return response


@web.middleware
async def problem_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Errors raised by aiohttp itself (unknown route, wrong method, body too large) and unexpected ones
    as problem+json."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return problem(exc.status, exc.reason, exc.text or exc.reason)
    except Exception:  # a bug must not leak a stack trace to the sender; the log has it
        log.exception("hook failed", path=request.path)
        return problem(500, "Internal error", "the record could not be processed; it was not acknowledged")


def build_app(routes: HookRoutes, max_body_bytes: int) -> web.Application:
    app = web.Application(client_max_size=max_body_bytes, middlewares=[problem_errors])
    routes.add_to(app)
    return app
