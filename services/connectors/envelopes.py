"""Bodies into vendor records: JSON or JSON lines, EventBridge `detail` envelopes, then each source's own
envelope (Okta hook `data.events`, CloudTrail `Records`, Kubernetes `EventList`, Graph `value`, ...).

The same function serves the HTTP hooks, the raw topics and replay, so a record has the same effect
whichever way it arrives.
"""

from __future__ import annotations

import json
from typing import Any

from connectors.registry import Connector
from connectors.vendor_json import mapping


class MalformedBody(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_body(raw: bytes) -> Any:
    """A JSON document, or JSON lines (one value per line) as a list."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"body is not UTF-8: {exc.reason} at byte {exc.start}") from exc
    if not text.strip():
        raise MalformedBody("body is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as whole_error:
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) < 2:
            raise MalformedBody(f"body is not JSON: {whole_error.msg} at line {whole_error.lineno}") from whole_error
        values = []
        for number, line in enumerate(lines, 1):
            try:
                values.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise MalformedBody(f"body is neither JSON nor JSON lines (line {number}: {exc.msg})") from exc
        return values


def eventbridge_detail(value: Any) -> Any:
    """`{"detail-type": ..., "source": ..., "detail": {...}}` (EventBridge, API destinations) -> the detail."""
    envelope = mapping(value)
    if envelope is not None and "detail-type" in envelope and mapping(envelope.get("detail")) is not None:
        return envelope["detail"]
    return value


def records_of(connector: Connector, body: Any) -> list[Any]:
    """Every vendor record in a body; JSON-lines bodies may hold envelopes, one per line."""
    bodies = body if isinstance(body, list) else [body]
    records: list[Any] = []
    for item in bodies:
        item = eventbridge_detail(item)
        records += [eventbridge_detail(r) for r in connector.unwrap(item)]
    return records
