"""HTTP ingress: `POST /v1/webhooks/{servicenow,jira,generic}` plus /healthz, /readyz, /metrics.

Thin: bound the body, check authenticity, hand a `WebhookDelivery` to `ReceiveWebhook`, map the result to
a status. 202 is answered only after the ticket events are acknowledged by Kafka (acks=all). Errors are
RFC 9457 problem+json documents; a 422 names the field at fault and the body is kept on the dead-letter
topic. Nothing is logged of bodies or signatures.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import Counter

from closeloop.consumer_loop import is_transient
from closeloop.logging import get_logger
from closeloop.metrics import ServiceMetrics
from request_intake.deliveries import ClaimRefusal
from request_intake.normalizers import SYSTEMS
from request_intake.receive_webhook import Accepted, ReceiveWebhook, Refused, Unprocessable, WebhookDelivery
from request_intake.signatures import SignatureRejected, Verifier

log = get_logger(__name__)

PROBLEM_TYPES = "https://closeloop.dev/problems/"
PROBLEM_JSON = "application/problem+json"
# Request headers kept with a dead letter: enough to trace and replay it, never the signature.
KEPT_HEADERS = ("content-type", "user-agent", "webhook-id", "webhook-timestamp", "x-atlassian-webhook-identifier")
CHUNK = 64 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problem(status: int, kind: str, title: str, detail: str, instance: str, **extra: Any) -> web.Response:
    body = {"type": PROBLEM_TYPES + kind, "title": title, "status": status, "detail": detail, "instance": instance}
    body.update(extra)
    return web.json_response(body, status=status, content_type=PROBLEM_JSON)


class WebhookEndpoint:
    def __init__(
        self,
        receive: ReceiveWebhook,
        verifiers: Mapping[str, Verifier | None],
        metrics: ServiceMetrics,
        *,
        max_body_bytes: int,
        retry_after_s: int = 5,
    ) -> None:
        self._receive = receive
        self._verifiers = verifiers
        self._metrics = metrics
        self._max_body_bytes = max_body_bytes
        self._retry_after = str(retry_after_s)
        self.rejections = Counter(
            "closeloop_intake_webhook_rejections",
            "Webhook deliveries refused before any effect, by system and reason",
            ["service", "system", "reason"],
            registry=metrics.registry,
        )

    def handler(self, system: str) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            started = time.perf_counter()
            input_name = f"webhook:{system}"
            self._metrics.received(input_name)
            try:
                return await self._handle(system, request)
            finally:
                self._metrics.observe(input_name, time.perf_counter() - started)

        return handle

    def _reject(self, system: str, reason: str) -> None:
        self.rejections.labels(self._metrics.service, system, reason).inc()

    async def _read_body(self, request: web.Request) -> bytes | None:
        """The body, or None when it is larger than allowed (read no further than the limit)."""
        if request.content_length is not None and request.content_length > self._max_body_bytes:
            return None
        chunks, size = [], 0
        async for chunk in request.content.iter_chunked(CHUNK):
            size += len(chunk)
            if size > self._max_body_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def _handle(self, system: str, request: web.Request) -> web.StreamResponse:
        path = request.path
        verifier = self._verifiers.get(system)
        if verifier is None:
            self._reject(system, "not_configured")
            return problem(
                503, "webhook-not-configured", "Webhook not configured", f"no {system} secret is configured", path
            )
        body = await self._read_body(request)
        if body is None:
            self._reject(system, "too_large")
            response = problem(
                413,
                "payload-too-large",
                "Payload too large",
                f"bodies are limited to {self._max_body_bytes} bytes",
                path,
            )
            response.force_close()
            return response
        try:
            verified = verifier.verify(body, request.headers)
        except SignatureRejected as exc:
            self._reject(system, exc.reason)
            log.warning("webhook refused", system=system, reason=exc.reason)
            return problem(401, exc.reason.replace("_", "-"), "Unauthenticated delivery", exc.detail, path)
        delivery = WebhookDelivery(
            system=system,
            body=body,
            delivery_id=verified.delivery_id,
            sent_at=verified.timestamp,
            headers=tuple((k, request.headers[k].encode()) for k in KEPT_HEADERS if k in request.headers),
        )
        try:
            result = await self._receive(delivery)
        except Exception as exc:
            transient = is_transient(exc)
            log.exception("webhook processing failed", system=system, transient=transient)
            status = 503 if transient else 500
            response = problem(
                status,
                "temporarily-unavailable" if transient else "internal-error",
                "Temporarily unavailable" if transient else "Internal error",
                "the delivery was not accepted; retry later",
                path,
            )
            response.headers["Retry-After"] = self._retry_after
            return response
        return self._respond(system, result, path)

    def _respond(self, system: str, result: Accepted | Refused | Unprocessable, path: str) -> web.StreamResponse:
        if isinstance(result, Accepted):
            return web.json_response(
                {"status": "accepted", "results": [o.as_json() for o in result.outcomes]}, status=202
            )
        if isinstance(result, Refused):
            self._reject(system, result.why.value)
            if result.why is ClaimRefusal.IN_PROGRESS:
                response = problem(
                    409, "delivery-in-progress", "Delivery in progress", "this delivery is being processed", path
                )
                response.headers["Retry-After"] = self._retry_after
                return response
            return problem(409, "replayed-delivery", "Replayed delivery", "this delivery was already accepted", path)
        invalid_json = result.reason_class == "invalid_json"
        return problem(
            422,
            "invalid-json" if invalid_json else "unmappable-ticket",
            "Invalid JSON" if invalid_json else "Unprocessable ticket",
            f"{result.field}: {result.detail}",
            path,
            field=result.field,
            errors=result.errors,
        )


def build_app(endpoint: WebhookEndpoint, max_body_bytes: int) -> web.Application:
    """The webhook routes; the caller adds the ops routes here or on their own listener (`serve_ops`)."""
    # aiohttp's own limit is a backstop; the endpoint enforces the limit while streaming.
    app = web.Application(client_max_size=max_body_bytes + CHUNK)
    for system in SYSTEMS:
        app.router.add_post(f"/v1/webhooks/{system}", endpoint.handler(system))
    return app
