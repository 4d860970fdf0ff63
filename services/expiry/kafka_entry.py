"""Kafka entry point: decode trigger inputs and hand them to the handlers. Knows no business rules.

Consumes ticket events (offboarding, project end, recertification decisions) and the grant stream
(principal status changes). Grant and snapshot events are skipped by their CloudEvents type header
without decoding: they are provisioning's and the reconciler's input, not expiry's.
"""

from __future__ import annotations

from aiokafka import ConsumerRecord

from closeloop.consumer_loop import BadInput
from closeloop.contracts.codec import DecodeError, decode, header_value
from closeloop.contracts.grants import GrantEvent, PrincipalStatusChanged, SnapshotMarker
from closeloop.contracts.progress import is_stream_progress
from closeloop.contracts.tickets import TicketEvent
from closeloop.logging import bind_correlation
from expiry.apply_triggers import end_project, offboard_principal
from expiry.context import ExpiryContext
from expiry.record_recertification_decision import DecisionOutcome, record_recertification_decision
from expiry.settings import ExpirySettings
from expiry.triggers import (
    EndProject,
    Ignored,
    OffboardPrincipal,
    RecertificationDecision,
    Trigger,
    Unusable,
    from_principal_status,
    from_ticket,
)


class TriggerEntry:
    def __init__(self, ctx: ExpiryContext, settings: ExpirySettings) -> None:
        self._ctx = ctx
        self._settings = settings

    @property
    def topics(self) -> tuple[str, str]:
        return self._settings.tickets_topic, self._settings.grants_topic

    async def process(self, record: ConsumerRecord[bytes, bytes]) -> None:
        metrics = self._ctx.metrics
        if is_stream_progress(record.headers):
            metrics.skip(record.topic, "stream_progress")
            return
        if record.topic == self._settings.grants_topic:
            event_type = header_value(record.headers, "ce_type")
            if event_type is not None and event_type != PrincipalStatusChanged.EVENT_TYPE:
                metrics.skip(record.topic, "not_principal_status")
                return
            event = _decode(record.value, (GrantEvent, PrincipalStatusChanged, SnapshotMarker))
            if not isinstance(event, PrincipalStatusChanged):
                metrics.skip(record.topic, "not_principal_status")
                return
            resolved: Trigger | Ignored | Unusable = from_principal_status(event, self._settings.offboarded_statuses)
        else:
            ticket = _decode(record.value, TicketEvent)
            assert isinstance(ticket, TicketEvent)  # noqa: S101 - decode checked the type
            resolved = from_ticket(ticket)
        if isinstance(resolved, Ignored):
            metrics.skip(record.topic, resolved.why)
            return
        if isinstance(resolved, Unusable):
            raise BadInput(resolved.why, "unprocessable")
        bind_correlation(resolved.correlation_id)
        await self.apply(resolved, record.topic)

    async def apply(self, trigger: Trigger, input_name: str) -> None:
        metrics = self._ctx.metrics
        if isinstance(trigger, OffboardPrincipal):
            result = await offboard_principal(self._ctx, trigger)
            if result.duplicate:
                metrics.duplicate(input_name)
        elif isinstance(trigger, EndProject):
            result = await end_project(self._ctx, trigger)
            if result.duplicate:
                metrics.duplicate(input_name)
        elif isinstance(trigger, RecertificationDecision):
            outcome = await record_recertification_decision(self._ctx, trigger)
            if outcome is DecisionOutcome.DUPLICATE:
                metrics.duplicate(input_name)
            elif outcome is DecisionOutcome.UNKNOWN_ENTITLEMENT:
                # Kept on the dead-letter topic so it can be replayed once the record exists.
                raise BadInput(f"recertification decision for unknown entitlement {trigger.key}", "unknown_entitlement")


def _decode(value: bytes | None, expected: type | tuple[type, ...]) -> object:
    try:
        return decode(value, expected)
    except DecodeError as exc:
        raise BadInput(exc.reason) from exc
