"""Handle one authenticated webhook delivery: replay check, parse, normalize, publish, or dead-letter.

Order matters: a delivery id is claimed before anything happens (so a replay is refused with no side
effect), the payload is normalized completely before anything is published (so a bad element in a batch
publishes nothing), and the claim is completed only after the effect, or released when processing failed
so that the sender's retry is accepted. Knows nothing of aiohttp: the HTTP entry maps results to responses.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from closeloop.dead_letter import DeadLetter, DeadLetterPublisher
from closeloop.logging import get_logger
from closeloop.metrics import ServiceMetrics
from closeloop.untrusted import UntrustedInput, load_json
from request_intake.deliveries import Claim, ClaimRefusal, Deliveries
from request_intake.ingest_ticket import IngestTicket, Outcome
from request_intake.normalizers import jira
from request_intake.problems import Invalid, Unmappable

log = get_logger(__name__)


@dataclass(frozen=True)
class WebhookDelivery:
    system: str
    body: bytes
    delivery_id: str | None = None  # verified Standard Webhooks id; Jira's is derived from the body
    sent_at: datetime | None = None  # verified signed timestamp
    # Headers worth keeping with a dead letter (never the signature).
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def input_name(self) -> str:
        return f"webhook:{self.system}"


@dataclass(frozen=True)
class Accepted:
    outcomes: list[Outcome]


@dataclass(frozen=True)
class Refused:
    """A valid, authentic delivery that was already accepted (or is being processed right now)."""

    why: ClaimRefusal
    delivery_id: str


@dataclass(frozen=True)
class Unprocessable:
    """The body cannot be turned into ticket events; it is kept on the dead-letter topic."""

    field: str
    detail: str
    reason_class: str  # invalid_json | unmappable
    errors: list[dict[str, str]] = dataclasses.field(default_factory=list)


WebhookResult = Accepted | Refused | Unprocessable


class ReceiveWebhook:
    def __init__(
        self,
        ingest: IngestTicket,
        deliveries: Deliveries,
        dead_letters: DeadLetterPublisher,
        metrics: ServiceMetrics,
        *,
        tickets_topic: str,
        replay_window_s: float,
        jira_replay_window_s: float,
    ) -> None:
        self._ingest = ingest
        self._deliveries = deliveries
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._tickets_topic = tickets_topic
        self._replay_window = timedelta(seconds=replay_window_s)
        self._jira_replay_window = timedelta(seconds=jira_replay_window_s)

    async def __call__(self, delivery: WebhookDelivery) -> WebhookResult:
        # In flight from here (before the replay check), for the tickets topic's progress records.
        with self._ingest.in_flight.receiving():
            return await self._receive(delivery)

    async def _receive(self, delivery: WebhookDelivery) -> WebhookResult:
        claims: list[Claim] = []
        try:
            result = await self._process(delivery, claims)
        except BaseException:
            # Nothing durable happened for this delivery (or it is safe to redo): let the sender's retry in.
            for claim in claims:
                await self._deliveries.release(claim)
            raise
        for claim in claims:
            await self._deliveries.complete(claim, self._keep_until(delivery))
        return result

    def _keep_until(self, delivery: WebhookDelivery) -> datetime:
        if delivery.sent_at is not None:
            return delivery.sent_at + self._replay_window
        return datetime.now(UTC) + self._jira_replay_window

    async def _claim(self, system: str, delivery_id: str, claims: list[Claim]) -> Refused | None:
        got = await self._deliveries.claim(system, delivery_id)
        if isinstance(got, ClaimRefusal):
            return Refused(got, delivery_id)
        claims.append(got)
        return None

    async def _process(self, delivery: WebhookDelivery, claims: list[Claim]) -> WebhookResult:
        if delivery.delivery_id is not None:
            refused = await self._claim(delivery.system, delivery.delivery_id, claims)
            if refused is not None:
                return refused
        try:
            payload: Any = load_json(delivery.body)
        except UntrustedInput as exc:
            return await self._dead_letter(delivery, Unmappable("<body>", f"the body {exc.reason}"), "invalid_json")
        if delivery.system == "jira" and delivery.delivery_id is None:
            # Jira sends no delivery id: the issue id + changelog id identify the delivery.
            key = jira.delivery_key(payload)
            if key is not None:
                refused = await self._claim(delivery.system, key, claims)
                if refused is not None:
                    return refused
        try:
            items = self._ingest.normalize(delivery.system, payload)
        except Unmappable as exc:
            return await self._dead_letter(delivery, exc, "unmappable")
        outcomes = await self._ingest.apply(items, delivery.input_name)
        invalid = [item.problem for item in items if isinstance(item, Invalid)]
        if invalid:  # the sound records are published; the delivery is kept with what was wrong
            await self._dead_letter(delivery, Unmappable.joined(invalid), "unmappable")
        return Accepted(outcomes)

    async def _dead_letter(self, delivery: WebhookDelivery, problem: Unmappable, reason_class: str) -> Unprocessable:
        await self._dead_letters.send(
            DeadLetter(
                topic=self._tickets_topic,
                value=delivery.body,
                reason=f"{reason_class}: {problem.describe()}",
                source=delivery.input_name,
                original_headers=delivery.headers,
            )
        )
        self._metrics.dead_lettered(delivery.input_name, reason_class)
        log.warning("webhook dead-lettered", input=delivery.input_name, field=problem.field, reason=problem.reason)
        return Unprocessable(
            problem.field, problem.reason, reason_class, [{"field": problem.field, "reason": problem.reason}]
        )
