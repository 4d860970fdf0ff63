"""Defensive readers for vendor JSON: nested lookups, optional strings, embedded JSON strings.

Vendor payloads are modelled by what we read, not by what they may contain: unknown keys are ignored,
and a missing or oddly typed optional field reads as None rather than raising.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from closeloop.untrusted import UntrustedInput, load_json
from connectors.errors import MalformedRecord

JsonObject = Mapping[str, Any]


def dig(value: Any, *path: str | int) -> Any:
    """`value[path[0]][path[1]]...`, or None as soon as a step is missing or of the wrong type."""
    for step in path:
        if isinstance(step, int):
            if (
                not isinstance(value, Sequence)
                or isinstance(value, str | bytes)
                or not -len(value) <= step < len(value)
            ):
                return None
            value = value[step]
        else:
            if not isinstance(value, Mapping):
                return None
            value = value.get(step)
    return value


def text(value: Any) -> str | None:
    """A non-empty, stripped string; numbers become strings; the literal "null" (Okta) reads as None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        value = value.strip()
        return value if value and value.lower() != "null" else None
    return None


def mapping(value: Any) -> JsonObject | None:
    return value if isinstance(value, Mapping) else None


def items(value: Any) -> list[Any]:
    """A list's elements (a JSON null or a non-list reads as empty)."""
    return list(value) if isinstance(value, list) else []


def objects(value: Any) -> list[JsonObject]:
    return [item for item in items(value) if isinstance(item, Mapping)]


def decode_embedded(value: Any) -> Any:
    """Decode JSON carried inside a string (`"\\"Global Administrator\\""`, `"[true]"`, `"{...}"`).

    Values that are not JSON text are returned unchanged: vendors are inconsistent about it.
    """
    if not isinstance(value, str):
        return value
    stripped = value.strip()
    if not stripped or stripped[0] not in '"[{':
        return value
    try:
        return load_json(stripped)
    except UntrustedInput:
        return value


def embedded_text(value: Any) -> str | None:
    """A string value that may be JSON-encoded once (or even twice)."""
    decoded = decode_embedded(value)
    if isinstance(decoded, str) and decoded != value:
        decoded = decode_embedded(decoded)
    return text(decoded)


def require_object(record: Any, what: str) -> JsonObject:
    if not isinstance(record, Mapping):
        raise MalformedRecord(f"{what} is not a JSON object")
    return record


def content_id(record: Any) -> str:
    """A stable id for records without one: the hash of their canonical JSON."""
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def compact_json(record: Any) -> bytes:
    """The record as JSON bytes for a dead letter; never fails (lone surrogates are kept escaped)."""
    try:
        return json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str).encode(
            "utf-8", "backslashreplace"
        )
    except (ValueError, RecursionError):  # a value too deep to serialise: keep what can be kept
        return repr(record)[:65536].encode("utf-8", "backslashreplace")
