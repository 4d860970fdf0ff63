"""Reading values out of vendor JSON by dotted path, whatever envelope the vendor wraps them in.

ServiceNow sends `{display_value, value}` pairs (sysparm_display_value=all), reference objects
`{link, value}` and dot-walked flat keys (`"variables.requested_for"`); Jira sends select options
`{value, id}`, user objects and plain strings. `resolve` and `scalar` hide those differences.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

WRAPPER_KEYS = frozenset({"display_value", "value", "link"})
# For objects that are not ServiceNow wrappers: the keys that best name the thing, in order.
NAMING_KEYS = ("value", "emailAddress", "name", "key", "accountId", "displayName", "id")


def is_wrapper(node: Any) -> bool:
    """A ServiceNow `{display_value, value}` or `{link, value}` wrapper."""
    return isinstance(node, dict) and "value" in node and len(node) <= 3 and set(node) <= WRAPPER_KEYS


def resolve(node: Any, path: str) -> Any:
    """The value at `path` (dotted), or None. Flat dotted keys win over nesting at each level."""
    if not path:
        return node
    return _resolve(node, path.split("."))


def _resolve(node: Any, parts: list[str]) -> Any:
    if not parts:
        return node
    if is_wrapper(node) and parts[0] not in WRAPPER_KEYS:
        return _resolve(node["value"], parts)
    if isinstance(node, dict):
        for end in range(len(parts), 0, -1):
            key = ".".join(parts[:end])
            if key in node:
                found = _resolve(node[key], parts[end:])
                if found is not None:
                    return found
        return None
    if isinstance(node, list) and parts[0].isdigit():
        index = int(parts[0])
        return _resolve(node[index], parts[1:]) if index < len(node) else None
    return None


def scalar(node: Any) -> str | None:
    """A non-empty string for a leaf value, a wrapper or a named object; None when there is nothing."""
    if node is None:
        return None
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, str):
        return node.strip() or None
    if isinstance(node, int | float):
        return str(node)
    if isinstance(node, dict):
        if is_wrapper(node):
            return scalar(node["value"])
        for key in NAMING_KEYS:
            found = scalar(node.get(key))
            if found is not None:
                return found
        return None
    if isinstance(node, list):
        for item in node:
            found = scalar(item)
            if found is not None:
                return found
    return None


def display(node: Any) -> str | None:
    """The human-readable form of a ServiceNow field (display_value when there is one)."""
    if is_wrapper(node):
        return scalar(node.get("display_value")) or scalar(node.get("value"))
    return scalar(node)


def first(node: Any, paths: Sequence[str]) -> tuple[str, str] | None:
    """(path, value) of the first path holding a non-empty scalar."""
    for path in paths:
        value = scalar(resolve(node, path))
        if value is not None:
            return path, value
    return None


def first_raw(node: Any, paths: Sequence[str]) -> tuple[str, Any] | None:
    """(path, raw JSON) of the first path holding anything but null / empty."""
    for path in paths:
        value = resolve(node, path)
        if is_wrapper(value):
            value = value["value"]
        if value not in (None, "", [], {}):
            return path, value
    return None
