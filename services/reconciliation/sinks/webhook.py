"""SOC webhook sink: every alert on the alerts topic, POSTed to a SOC endpoint, signed per Standard Webhooks.

- Body: the OCSF Detection Finding JSON, unchanged. Headers: `webhook-id` (the alert's deterministic event id,
  so receivers deduplicate), `webhook-timestamp`, `webhook-signature` (`v1,<base64 HMAC-SHA256>` over
  `id.timestamp.body` with the shared secret, CLOSELOOP_ALERTS_WEBHOOK_SECRET), and the CloudEvents attributes
  in HTTP binary mode (`ce-id`, `ce-type`, ...).
- Retries with exponential backoff (tenacity) on connection errors, timeouts, 408/425/429 and 5xx; each
  attempt is signed afresh. Other 4xx answers, and retries exhausted, are permanent: the alert record goes
  to `<alerts topic>.dlq` with the reason, and the sink moves on.
- Offsets are committed after delivery (or dead-lettering): at-least-once delivery to the SOC.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from standardwebhooks.webhooks import Webhook
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from closeloop.consumer_loop import BadInput, ConsumerLoop
from closeloop.contracts.alerts import parse_alert
from closeloop.dead_letter import DeadLetterPublisher, Kind
from closeloop.kafka import consumer, producer
from closeloop.logging import get_logger
from closeloop.metrics import ServiceMetrics
from closeloop.settings import KafkaSettings
from reconciliation.settings import ReconciliationSettings

log = get_logger(__name__)

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
CE_HEADERS = ("ce_specversion", "ce_id", "ce_type", "ce_source", "ce_subject", "ce_time", "ce_correlationid")


class RetryableDelivery(Exception):
    """The endpoint may accept the alert later (network error, timeout, 429, 5xx)."""


class PermanentDelivery(Exception):
    """The endpoint refused the alert for good (4xx other than 408/425/429)."""


@dataclass(frozen=True)
class SignedRequest:
    body: bytes
    headers: dict[str, str]


def sign_request(
    webhook: Webhook, message_id: str, body: bytes, at: datetime, cloudevent: dict[str, str]
) -> SignedRequest:
    headers = {
        "content-type": "application/json",
        "user-agent": "closeloop-reconciliation",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": webhook.sign(message_id, at, body.decode()),
    }
    headers |= {name.replace("_", "-"): value for name, value in cloudevent.items()}
    return SignedRequest(body=body, headers=headers)


class WebhookSender:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        webhook: Webhook,
        *,
        max_attempts: int,
        timeout_s: float,
        max_backoff_s: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._session = session
        self._url = url
        self._webhook = webhook
        self._max_attempts = max_attempts
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_backoff_s = max_backoff_s
        self._clock = clock
        self.attempts = 0

    async def deliver(self, message_id: str, body: bytes, cloudevent: dict[str, str]) -> None:
        """POST until accepted; raises PermanentDelivery, or RetryableDelivery once the attempts are exhausted."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(RetryableDelivery),
            stop=stop_after_attempt(self._max_attempts),
            wait=wait_exponential(multiplier=0.2, max=self._max_backoff_s),
            reraise=True,
        ):
            with attempt:
                await self._post(sign_request(self._webhook, message_id, body, self._clock(), cloudevent))

    async def _post(self, request: SignedRequest) -> None:
        self.attempts += 1
        try:
            async with self._session.post(
                self._url, data=request.body, headers=request.headers, timeout=self._timeout
            ) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RetryableDelivery(f"{type(exc).__name__}: {exc}") from exc
        if 200 <= status < 300:
            return
        if status in RETRYABLE_STATUS:
            raise RetryableDelivery(f"HTTP {status}")
        raise PermanentDelivery(f"HTTP {status}")


class WebhookSink:
    """Consumes the alerts topic and delivers each alert; bad records and failed deliveries are dead-lettered."""

    def __init__(
        self,
        consumer_: AIOKafkaConsumer,
        producer_: AIOKafkaProducer,
        session: aiohttp.ClientSession,
        sender: WebhookSender,
        metrics: ServiceMetrics,
    ) -> None:
        self._consumer = consumer_
        self._producer = producer_
        self._session = session
        self._sender = sender
        self._metrics = metrics
        self._loop = ConsumerLoop(
            consumer_, self.process, DeadLetterPublisher(producer_, "reconciliation-webhook"), metrics
        )

    async def process(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if record.value is None:
            raise BadInput("alert record has no value")
        try:
            alert, _ = parse_alert(record.value)
        except ValueError as exc:
            raise BadInput(str(exc)) from exc
        cloudevent = {
            k: v.decode(errors="replace") for k, v in record.headers or () if k in CE_HEADERS and v is not None
        }
        try:
            await self._sender.deliver(alert.event_id, record.value, cloudevent)
        except (RetryableDelivery, PermanentDelivery) as exc:
            raise BadInput(f"webhook delivery failed: {exc}", "delivery_failed", Kind.UNEXPECTED) from exc
        self._metrics.published("webhook")

    async def run(self) -> None:
        await self._loop.run()

    def stop(self) -> None:
        self._loop.stop()

    async def close(self) -> None:
        await asyncio.gather(
            self._consumer.stop(), self._producer.stop(), self._session.close(), return_exceptions=True
        )


async def build_webhook_sink(
    settings: ReconciliationSettings, kafka: KafkaSettings, metrics: ServiceMetrics
) -> WebhookSink:
    if not settings.webhook_url:
        raise ValueError("webhook_url is not set")
    if settings.webhook_secret is None or not settings.webhook_secret.get_secret_value():
        raise ValueError("CLOSELOOP_ALERTS_WEBHOOK_SECRET is required to sign webhooks")
    webhook = Webhook(settings.webhook_secret.get_secret_value())
    consumer_ = consumer(kafka, settings.webhook_group_id, settings.alerts_topic, client_suffix="alerts-webhook")
    producer_ = producer(kafka, client_suffix="alerts-webhook-dlq")
    await producer_.start()
    await consumer_.start()
    session = aiohttp.ClientSession()
    sender = WebhookSender(
        session,
        settings.webhook_url,
        webhook,
        max_attempts=settings.webhook_max_attempts,
        timeout_s=settings.webhook_timeout_s,
        max_backoff_s=settings.webhook_max_backoff_s,
    )
    log.info("webhook sink started", topic=settings.alerts_topic, group=settings.webhook_group_id)
    return WebhookSink(consumer_, producer_, session, sender, metrics)
