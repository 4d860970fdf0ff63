"""The edge for bytes and JSON from outside: decode, parse, and screen values before anything reads them.

Every ingress (connector hooks and raw topics, ITSM webhooks, event decoding) parses through `load_json`
and screens each record with `screen`, so what reaches a parser is bounded: UTF-8 text, JSON numbers
that fit (no 4,300-digit integers, no `1e400`), nesting no deeper than `MAX_DEPTH`, and strings without
NUL (PostgreSQL refuses it in text and jsonb) or lone surrogates (they cannot be encoded back to UTF-8).
Anything else raises `UntrustedInput`, a ValueError whose `reason` is fit for a dead letter.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, TypeVar

# Deeper than any vendor payload we read (CloudTrail and Entra stay under 12 levels).
MAX_DEPTH = 64
# Digits of a JSON integer: epoch nanoseconds have 19; 40 leaves room for any id sent as a number.
MAX_INT_DIGITS = 40

T = TypeVar("T")


class UntrustedInput(ValueError):
    """Input that no parser should see; `reason` completes \"the body ...\" without echoing the value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _parse_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise UntrustedInput(f"holds an integer with more than {MAX_INT_DIGITS} digits")
    return int(digits)


def _parse_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise UntrustedInput(f"holds a number out of range: {literal[:40]}")
    return value


def _parse_constant(name: str) -> Any:
    raise UntrustedInput(f"holds {name}, which is not a JSON number")


def decode_text(raw: bytes | str) -> str:
    """Bytes as UTF-8 (a BOM is dropped); a str is returned unchanged (it is screened later)."""
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UntrustedInput(f"is not UTF-8: {exc.reason} at byte {exc.start}") from None


def parse_json(text: str) -> Any:
    """`json.loads` with bounded numbers; every failure is UntrustedInput (json.JSONDecodeError kept as cause)."""
    try:
        return json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)
    except UntrustedInput:
        raise
    except json.JSONDecodeError as exc:
        raise UntrustedInput(f"is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError:
        raise UntrustedInput(f"nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # anything else json or a number conversion refuses
        raise UntrustedInput(f"is not JSON: {exc}") from None


def load_json(raw: bytes | str) -> Any:
    """Decode, parse and screen a whole document."""
    value = parse_json(decode_text(raw))
    screen(value)
    return value


def screen_text(value: str, where: str = "a string") -> str:
    """`value`, or UntrustedInput when it holds NUL or a lone surrogate."""
    if "\x00" in value:
        raise UntrustedInput(f"holds {where} with a NUL character")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise UntrustedInput(f"holds {where} with a lone surrogate") from None
    return value


def screen(value: Any) -> Any:
    """Raise UntrustedInput when `value` nests deeper than MAX_DEPTH or holds a string (or key) with NUL
    or a lone surrogate, or a non-finite float. Iterative: no recursion limit to hit."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            screen_text(node)
        elif isinstance(node, dict):
            if depth >= MAX_DEPTH:
                raise UntrustedInput(f"nests deeper than {MAX_DEPTH} levels")
            for key, child in node.items():
                if isinstance(key, str):
                    screen_text(key, "a key")
                stack.append((child, depth + 1))
        elif isinstance(node, list | tuple):
            if depth >= MAX_DEPTH:
                raise UntrustedInput(f"nests deeper than {MAX_DEPTH} levels")
            stack.extend((child, depth + 1) for child in node)
        elif isinstance(node, float) and not math.isfinite(node):
            raise UntrustedInput("holds a number out of range")
        elif isinstance(node, int) and not isinstance(node, bool) and node.bit_length() > MAX_INT_DIGITS * 4:
            raise UntrustedInput(f"holds an integer with more than {MAX_INT_DIGITS} digits")
    return value


# Exceptions that mean "this input does not fit" when a parser meets data it did not expect. A parser
# should raise its own bad-input error; these are caught per record as a last line, so one hostile
# record is dead-lettered instead of failing its batch (and counted, so a fuzz run can find them).
DATA_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,  # also UnicodeError, json.JSONDecodeError, pydantic.ValidationError
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    ArithmeticError,  # OverflowError from datetime and timedelta arithmetic
    RecursionError,
)
# The prefix of the reason of a bad-input error made from one of DATA_ERRORS.
UNEXPECTED = "unexpected "


def as_bad_input(
    own: type[BaseException], make: Callable[[str], BaseException], call: Callable[..., T], *args: Any
) -> T:
    """`call(*args)`, turning DATA_ERRORS other than the parser's `own` error into `make(reason)`."""
    try:
        return call(*args)
    except own:
        raise
    except DATA_ERRORS as exc:
        raise make(f"{UNEXPECTED}{type(exc).__name__}: {safe_text(str(exc))[:200]}") from exc


def safe_text(value: str) -> str:
    """`value` encodable as UTF-8 (lone surrogates escaped): for reasons, headers and logs."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")
