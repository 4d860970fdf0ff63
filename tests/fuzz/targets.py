"""The real ingress of each parser, over in-memory stores that enforce what Kafka and PostgreSQL would.

A connector body goes through `HookRoutes.ingest_body` (body parser, envelope, normalizer, interpreter,
publish, dead letter); an ITSM body through `ReceiveWebhook` (body parser, replay claim, normalizer,
transition, publish, dead letter). Whatever the input, the contract is: a 200/422 answer (connectors) or
Accepted/Refused/Unprocessable (intake), every published event encodes and decodes, every dead letter has
bytes and encodable headers, nothing stored would be refused by PostgreSQL, and no record was rejected
by the last-line guard (`closeloop.untrusted.UNEXPECTED`): that would be a parser gap.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from closeloop.contracts.base import Envelope
from closeloop.contracts.codec import cloudevents_headers, decode, encode, kafka_key
from closeloop.contracts.tickets import TicketEvent
from closeloop.dead_letter import DeadLetter
from closeloop.metrics import ServiceMetrics
from closeloop.untrusted import UNEXPECTED
from connectors.http_entry import HookRoutes
from connectors.ingest_records import IngestRecords, Origin
from connectors.metrics import ConnectorMetrics
from connectors.registry import CONNECTORS
from connectors.sink import MemorySink
from connectors.stores import InMemoryLedger
from request_intake.deliveries import Claim, ClaimRefusal
from request_intake.ingest_ticket import IngestTicket
from request_intake.mapping import load_mapping
from request_intake.observation import TicketObservation
from request_intake.receive_webhook import Accepted, ReceiveWebhook, Refused, Unprocessable, WebhookDelivery
from request_intake.transitions import LastSeen
from tests.unit.connectors.support import context

BIGINT = 2**63
SECRET = SecretStr("fuzz-secret-with-at-least-24-bytes")


class ContractBroken(AssertionError):
    """The input escaped the bad-input contract."""


def _check_event(event: Envelope, keyed: bool = True) -> None:
    if keyed and kafka_key(event) is None:
        raise ContractBroken(f"{event.event_type} without a Kafka key")
    cloudevents_headers(event)
    decoded = decode(encode(event))
    if decoded.event_id != event.event_id:
        raise ContractBroken("event does not survive encode/decode")


def _check_dead_letter(letter: DeadLetter) -> None:
    if not isinstance(letter.value, bytes):
        raise ContractBroken("dead letter without the original bytes")
    letter.headers("fuzz")
    if letter.reason.startswith(UNEXPECTED):
        raise ContractBroken(f"parser gap: {letter.reason}")


def _check_text_for_postgres(value: str | None, what: str) -> None:
    if value is not None and "\x00" in value:
        raise ContractBroken(f"{what} holds a NUL character PostgreSQL refuses")
    if value is not None:
        value.encode("utf-8")


@dataclass
class ConnectorTarget:
    """One connector's hook, end to end, without Kafka and PostgreSQL."""

    source: str

    def __post_init__(self) -> None:
        self._metrics = ConnectorMetrics()

    async def __call__(self, body: bytes) -> str:
        ledger, sink = InMemoryLedger(), MemorySink()
        ingest = IngestRecords(CONNECTORS, ledger, sink, self._metrics, context)
        routes = HookRoutes(
            ingest, sources=[self.source], okta_secret=SECRET, hook_secret=SECRET, max_body_bytes=1 << 20
        )
        response = await routes.ingest_body(self.source, body, Origin(kind="hook", detail=f"/v1/hooks/{self.source}"))
        if response.status not in (200, 422):
            raise ContractBroken(f"answered {response.status}")
        for event in sink.events:
            _check_event(event)
        for rejected in sink.rejected:
            _check_dead_letter(DeadLetter(topic="iam.grants.v1", value=rejected.value, reason=rejected.reason))
        for (_, key), entry in ledger.states.items():
            _check_text_for_postgres(key, "state key")
            _check_text_for_postgres(json.dumps(entry.value), "state")
        for name in ledger.aliases:
            _check_text_for_postgres(name, "alias")
        if sink.events:
            return "published"
        return "dead_lettered" if sink.rejected else "skipped"


class _Slot:
    last: LastSeen | None = None

    async def record(self, obs: TicketObservation, event_id: str | None) -> None:
        # The columns of intake_ticket_state: text without NUL, version bigint, timestamptz.
        for value, what in ((obs.state_key, "ticket_key"), (obs.draft.ticket_number, "ticket_number")):
            _check_text_for_postgres(value, what)
        _check_text_for_postgres(obs.vendor_state, "vendor_state")
        if obs.version is not None and not -BIGINT <= obs.version < BIGINT:
            raise ContractBroken(f"version {obs.version} does not fit a bigint column")
        if obs.updated_at is not None and obs.updated_at.tzinfo is None:
            raise ContractBroken("naive vendor_updated_at")


class _States:
    @asynccontextmanager
    async def locked(self, system: str, ticket_key: str) -> AsyncIterator[_Slot]:
        yield _Slot()


class _Publisher:
    topic = "itsm.tickets.v1"

    def __init__(self) -> None:
        self.events: list[TicketEvent] = []

    async def publish(self, event: TicketEvent, key: bytes) -> None:
        if not isinstance(key, bytes) or not key:
            raise ContractBroken("ticket event without a key")
        _check_event(event, keyed=False)  # ticket events are keyed by the handler, by ticket
        self.events.append(event)


class _Deliveries:
    async def claim(self, source: str, delivery_id: str) -> Claim | ClaimRefusal:
        _check_text_for_postgres(delivery_id, "delivery_id")
        return Claim(source, delivery_id, uuid.uuid4())

    async def complete(self, claim: Claim, keep_until: datetime) -> None:
        return None

    async def release(self, claim: Claim) -> None:
        return None


class _DeadLetters:
    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    async def send(self, letter: DeadLetter) -> None:
        _check_dead_letter(letter)
        self.letters.append(letter)


@dataclass
class IntakeTarget:
    """One ITSM webhook after authentication, end to end, without Kafka and PostgreSQL."""

    system: str

    def __post_init__(self) -> None:
        from tests.unit.request_intake.fixtures import DATA

        mapping = load_mapping(DATA / "jira" / "site_mapping.yaml") if self.system == "jira" else load_mapping()
        self._metrics = ServiceMetrics("fuzz-intake")
        self._publisher = _Publisher()
        self._dead_letters = _DeadLetters()
        ingest = IngestTicket(mapping, _States(), self._publisher, self._metrics)
        self.receive = ReceiveWebhook(
            ingest,
            _Deliveries(),  # type: ignore[arg-type]
            self._dead_letters,  # type: ignore[arg-type]
            self._metrics,
            tickets_topic="itsm.tickets.v1",
            replay_window_s=300,
            jira_replay_window_s=86400,
        )

    @property
    def published(self) -> list[TicketEvent]:
        return self._publisher.events

    @property
    def dead_letters(self) -> list[DeadLetter]:
        return self._dead_letters.letters

    async def __call__(self, body: bytes) -> str:
        self._publisher.events.clear()
        self._dead_letters.letters.clear()
        delivery_id = None if self.system == "jira" else f"msg_{uuid.uuid4().hex}"
        result: Any = await self.receive(
            WebhookDelivery(self.system, body, delivery_id=delivery_id, sent_at=datetime.now(UTC))
        )
        if isinstance(result, Unprocessable):
            if not self._dead_letters.letters:
                raise ContractBroken("unprocessable body not dead-lettered")
            return "dead_lettered"
        if isinstance(result, Refused):
            return "refused"
        if not isinstance(result, Accepted):
            raise ContractBroken(f"unexpected result {result!r}")
        return "published" if self._publisher.events else "skipped"


def run_sync(loop: asyncio.AbstractEventLoop, target: Any, body: bytes) -> str:
    result: str = loop.run_until_complete(target(body))
    return result
