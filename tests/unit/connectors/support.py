"""Helpers for the connector unit tests: load fixtures, run a connector over them, summarize events."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from closeloop.contracts.base import Envelope
from closeloop.contracts.grants import GrantEvent, PrincipalStatusChanged
from connectors.envelopes import records_of
from connectors.model import ConnectorEvent, ParseContext, ParseResult, StateEntry
from connectors.registry import CONNECTORS

DATA = Path(__file__).resolve().parents[2] / "data"
RECEIVED_AT = datetime(2030, 1, 1, tzinfo=UTC)


def fixture(source: str, name: str) -> Any:
    return json.loads((DATA / source / f"{name}.json").read_text())


def fixture_bytes(source: str, name: str) -> bytes:
    return (DATA / source / f"{name}.json").read_bytes()


def context(**overrides: Any) -> ParseContext:
    return ParseContext(received_at=RECEIVED_AT, **overrides)


class Runner:
    """Runs one connector over records in order, carrying the cached state like the service does."""

    def __init__(self, source: str, ctx: ParseContext | None = None) -> None:
        self.connector = CONNECTORS[source]
        self.source = source
        self.ctx = ctx or context()
        self.state: dict[str, StateEntry] = {}

    def results(self, body: Any) -> list[ParseResult]:
        out = []
        for raw in records_of(self.connector, body):
            record = self.connector.normalize(raw)
            keys = self.connector.state_keys(record, self.ctx)
            ctx = self.ctx.with_state({k: self.state[k] for k in keys if k in self.state})
            result = self.connector.interpret(record, ctx)
            self.state.update(result.state_updates)
            out.append(result)
        return out

    def events(self, body: Any) -> list[ConnectorEvent]:
        return [event for result in self.results(body) for event in result.events]

    def fixture_events(self, *names: str) -> list[ConnectorEvent]:
        events: list[ConnectorEvent] = []
        for name in names:
            events = self.events(fixture(self.source, name))
        return events


def summary(events: Iterable[Envelope]) -> list[tuple[str, str]]:
    """(action, entitlement key) for grants, ("status:<status>", principal) for status changes."""
    out = []
    for event in events:
        if isinstance(event, GrantEvent):
            out.append((event.action.value, str(event.key)))
        elif isinstance(event, PrincipalStatusChanged):
            out.append((f"status:{event.status.value}", event.principal))
    return out
