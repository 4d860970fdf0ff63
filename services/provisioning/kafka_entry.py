"""Kafka record processors: decode, validate, route to one handler. No business logic here.

`RecordInputs` takes tickets and grant events (the record consumer); `CommandInputs` takes provisioning
commands (the executor runner). Undecodable input and valid input that can never be applied raise
`BadInput`, which the ConsumerLoop dead-letters with the reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiokafka import ConsumerRecord

from closeloop.consumer_loop import BadInput
from closeloop.contracts.codec import DecodeError, decode
from closeloop.contracts.commands import ProvisioningCommand
from closeloop.contracts.grants import GrantAction, GrantEvent, PrincipalStatusChanged, SnapshotMarker
from closeloop.contracts.progress import is_stream_progress
from closeloop.contracts.ticket_interpretation import TicketAction, interpret
from closeloop.contracts.tickets import TicketEvent
from closeloop.metrics import ServiceMetrics
from provisioning.activate_entitlement import activate_entitlement
from provisioning.confirm_revocation import confirm_revocation
from provisioning.context import Outcome, Provisioning, Result, Unprocessable
from provisioning.create_entitlement import create_entitlement
from provisioning.execute_command import ExecutorContext, execute_command
from provisioning.request_revocation import request_revocation
from provisioning.update_identity import update_identity

TicketHandler = Callable[[TicketEvent, Provisioning], Awaitable[Result]]

GRANTING_ACTIONS = (TicketAction.GRANT, TicketAction.EXCEPTION)


def ticket_handler(ticket: TicketEvent) -> TicketHandler | None:
    """Which handler a ticket transition goes to (None: nothing for the record to do).

    Approval is the interpretation's: any transition that proves it (approved, in fulfilment, fulfilled,
    closed complete). A break-glass exception's incident being worked is such a transition: the incident
    in progress is the authorisation, and policy still demands an explicit, time-bound window.
    Provisioning acts only on tickets that name one entitlement; offboarding, project-end and
    recertification tickets fan out to many and belong to the expiry service.
    """
    meaning = interpret(ticket)
    if meaning.action in GRANTING_ACTIONS:
        if meaning.approved:
            return create_entitlement
        if meaning.withdrawn:
            return request_revocation
        return None
    if meaning.action is TicketAction.REVOKE and meaning.approved:
        return request_revocation
    return None


class RecordInputs:
    def __init__(self, ctx: Provisioning, metrics: ServiceMetrics, *, tickets_topic: str, grants_topic: str) -> None:
        self._ctx = ctx
        self._metrics = metrics
        self._tickets_topic = tickets_topic
        self._grants_topic = grants_topic

    async def __call__(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if is_stream_progress(record.headers):
            self._metrics.skip(record.topic, "stream_progress")
            return
        try:
            if record.topic == self._tickets_topic:
                result = await self._ticket(record.value)
            elif record.topic == self._grants_topic:
                result = await self._grant(record.value)
            else:
                raise BadInput(f"unexpected topic {record.topic}", "unroutable")
        except DecodeError as exc:
            raise BadInput(exc.reason, "invalid") from exc
        except Unprocessable as exc:
            raise BadInput(exc.reason, "unprocessable") from exc
        count(self._metrics, record.topic, result)

    async def _ticket(self, value: bytes | None) -> Result:
        ticket = decode(value, expected=TicketEvent)
        assert isinstance(ticket, TicketEvent)  # noqa: S101 - decode checked the type
        handler = ticket_handler(ticket)
        if handler is None:
            return Result.skipped(f"{ticket.kind.value} {ticket.transition.value}")
        return await handler(ticket, self._ctx)

    async def _grant(self, value: bytes | None) -> Result:
        event = decode(value, expected=(GrantEvent, PrincipalStatusChanged, SnapshotMarker))
        if isinstance(event, GrantEvent):
            if event.action is GrantAction.GRANT:
                return await activate_entitlement(event, self._ctx)
            return await confirm_revocation(event, self._ctx)
        if isinstance(event, PrincipalStatusChanged):
            return await update_identity(event, self._ctx)
        return Result.skipped("snapshot marker")


class CommandInputs:
    def __init__(self, ctx: ExecutorContext, metrics: ServiceMetrics) -> None:
        self._ctx = ctx
        self._metrics = metrics

    async def __call__(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            command = decode(record.value, expected=ProvisioningCommand)
        except DecodeError as exc:
            raise BadInput(exc.reason, "invalid") from exc
        assert isinstance(command, ProvisioningCommand)  # noqa: S101 - decode checked the type
        count(self._metrics, record.topic, await execute_command(command, self._ctx))


def count(metrics: ServiceMetrics, topic: str, result: Result) -> None:
    if result.outcome is Outcome.DUPLICATE:
        metrics.duplicate(topic)
    elif result.outcome is Outcome.SKIPPED:
        metrics.skip(topic, result.why or "nothing to do")
