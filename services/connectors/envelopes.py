"""Bodies into vendor records: JSON or JSON lines, EventBridge `detail` envelopes, then each source's own
envelope (Okta hook `data.events`, CloudTrail `Records`, Kubernetes `EventList`, Graph `value`, ...).

The same function serves the HTTP hooks, the raw topics and replay, so a record has the same effect
whichever way it arrives.
"""

from __future__ import annotations

import json
from typing import Any

from closeloop.untrusted import UntrustedInput, as_bad_input, decode_text, parse_json
from connectors.registry import Connector
from connectors.vendor_json import mapping


class MalformedBody(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_body(raw: bytes) -> Any:
    """A JSON document, or JSON lines (one value per line) as a list. Numbers and nesting are bounded
    (see closeloop.untrusted); strings are screened per record, so one bad record spares its batch."""
    try:
        text = decode_text(raw)
    except UntrustedInput as exc:
        raise MalformedBody(f"body {exc.reason}") from exc
    if not text.strip():
        raise MalformedBody("body is empty")
    try:
        return parse_json(text)
    except UntrustedInput as whole_error:
        lines = [line for line in text.splitlines() if line.strip()]
        if not isinstance(whole_error.__cause__, json.JSONDecodeError) or len(lines) < 2:
            raise MalformedBody(f"body {whole_error.reason}") from whole_error
        values = []
        for number, line in enumerate(lines, 1):
            try:
                values.append(parse_json(line))
            except UntrustedInput as exc:
                raise MalformedBody(f"body is neither JSON nor JSON lines (line {number} {exc.reason})") from exc
        return values


def eventbridge_detail(value: Any) -> Any:
    """`{"detail-type": ..., "source": ..., "detail": {...}}` (EventBridge, API destinations) -> the detail."""
    envelope = mapping(value)
    if envelope is not None and "detail-type" in envelope and mapping(envelope.get("detail")) is not None:
        return envelope["detail"]
    return value


def records_of(connector: Connector, body: Any) -> list[Any]:
    """Every vendor record in a body; JSON-lines bodies may hold envelopes, one per line.
    Raises MalformedBody when the envelope itself cannot be taken apart."""
    return as_bad_input(MalformedBody, MalformedBody, _records_of, connector, body)


def _records_of(connector: Connector, body: Any) -> list[Any]:
    bodies = body if isinstance(body, list) else [body]
    records: list[Any] = []
    for item in bodies:
        item = eventbridge_detail(item)
        records += [eventbridge_detail(r) for r in connector.unwrap(item)]
    return records


def body_records(connector: Connector, raw: bytes) -> list[Any]:
    """The vendor records of a hook body or raw-topic value; MalformedBody when there are none to take."""
    return records_of(connector, parse_body(raw))
