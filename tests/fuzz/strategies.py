"""Hostile JSON bodies: real vendor shapes with one value replaced, random documents, and raw text tricks.

Bodies are built as text, not with json.dumps, so they can hold what Python would refuse to write or
silently normalise: 5,000-digit integers, `1e400`, `NaN`, 1,000-deep nesting, escaped lone surrogates.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

DATA = Path(__file__).resolve().parents[1] / "data"


@dataclass(frozen=True)
class Raw:
    """JSON text placed verbatim into a body."""

    text: str


HOSTILE_DATES = [
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    "9999-12-31T23:59:59.999999999-14:00",
    "0000-00-00T00:00:00Z",
    "2024-02-30T25:61:61Z",
    "2024-01-01 00:00:00" + "0" * 5000,
    "9" * 5000,
    "1" * 17,
    "99999999999999999",
    "-1",
    "1e400",
    "Jan 8, 0001 8:43:06 PM",
    "12/31/9999 23:59:59",
]
HOSTILE_NAMES = [
    "a@" + "a." * 20000 + "@",
    "a@" + "a." * 20000,
    "svc-" + "-" * 20000,
    "ai-" * 10000,
    "x" * 5000,
    "a|b",
    "group:..|okta",
    "acme/payments|github:team",
    "..",
    ".",
    "../../users/00u1",
    "%2e%2e",
    "\u00a0",
]
HOSTILE_TEXT = [
    *HOSTILE_DATES,
    *HOSTILE_NAMES,
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "null",
    "",
    " ",
    "P10000000000D",
]
HOSTILE_RAW = [
    Raw("9" * 5000),
    Raw("-" + "9" * 4400),
    Raw("1e400"),
    Raw("-1e400"),
    Raw("NaN"),
    Raw("Infinity"),
    Raw(str(10**14)),
    Raw(str(2**63)),
    Raw(str(-(2**63) - 1)),
    Raw(str(10**19)),
    Raw("1" + "0" * 39),
    Raw("1e-400"),
    Raw("1e308"),
    Raw("[" * 1000 + "]" * 1000),
    Raw('{"a":' * 200 + "1" + "}" * 200),
    Raw('"\\ud800"'),
    Raw('"\\udfff\\u0000"'),
    Raw('"\\u0000"'),
]

_text = st.text(max_size=30) | st.sampled_from(HOSTILE_TEXT)
_leaf: st.SearchStrategy[Any] = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text
    | st.sampled_from(HOSTILE_RAW)
)
json_values: st.SearchStrategy[Any] = st.recursive(
    _leaf,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=12,
)
# A replacement value: half of the time one of the known-hostile values, so that they land on real fields.
replacements: st.SearchStrategy[Any] = st.sampled_from([*HOSTILE_TEXT, *HOSTILE_RAW]) | json_values
_DATE_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}|^\d{10,19}$|^[A-Z][a-z]{2} \d")


def replacement_for(original: Any) -> st.SearchStrategy[Any]:
    """Values that fit where `original` was are the ones that get deep: dates for dates, names for names."""
    if (isinstance(original, int | float) and not isinstance(original, bool)) or (
        isinstance(original, str) and _DATE_LIKE.match(original[:40])
    ):
        return st.sampled_from([*HOSTILE_DATES, *HOSTILE_RAW]) | replacements
    if isinstance(original, str):
        return st.sampled_from(HOSTILE_NAMES) | replacements
    return replacements


def value_at(node: Any, path: Sequence[Any]) -> Any:
    for step in path:
        node = node[step]
    return node


def to_text(value: Any) -> str:
    """JSON text of a tree that may hold Raw leaves (iterative: trees can be deep)."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{_string(str(k))}:{to_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(to_text(v) for v in value) + "]"
    if isinstance(value, str):
        return _string(value)
    return json.dumps(value)


def _string(value: str) -> str:
    # ensure_ascii writes lone surrogates as \udXXX escapes, as a hostile sender would.
    return json.dumps(value, ensure_ascii=True)


def load_seeds(*names: str) -> list[Any]:
    """Real records: the hand-written fixtures of a source plus its public vendor samples."""
    seeds: list[Any] = []
    for name in names:
        folder = DATA / name
        if folder.is_dir():
            seeds += [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
        samples = DATA / "vendor-samples" / f"{name}.jsonl"
        if samples.exists():
            lines = [line for line in samples.read_text().splitlines() if line.strip()]
            seeds += [json.loads(line) for line in lines[:40]]
    return seeds


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, (*prefix, index))
    return found


def replaced(node: Any, path: Sequence[Any], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(node, dict):
        return {**node, head: replaced(node[head], rest, value)}
    copy = list(node)
    copy[head] = replaced(node[head], rest, value)
    return copy


@st.composite
def bodies(draw: st.DrawFn, seeds: Sequence[Any]) -> bytes:
    """One hostile body: mostly a real record with 1-3 values replaced, sometimes random JSON or bytes."""
    kind = draw(st.sampled_from(["mutated"] * 6 + ["batch", "random", "deep", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    if kind == "random":
        return to_text(draw(json_values)).encode("utf-8", "surrogatepass")
    if kind == "deep":
        depth = draw(st.sampled_from([63, 64, 65, 500, 999, 1000, 3000]))
        return ("[" * depth + "]" * depth).encode()
    seed = draw(st.sampled_from(list(seeds)))
    for _ in range(draw(st.integers(1, 3))):
        every = paths(seed)
        leaves = [p for p in every if not isinstance(value_at(seed, p), dict | list)]
        prefer_leaf = draw(st.integers(0, 4)) > 0  # mostly scalars: that is where parsers convert values
        path = draw(st.sampled_from(leaves if leaves and prefer_leaf else every))
        seed = replaced(seed, path, draw(replacement_for(value_at(seed, path))))
    if kind == "batch":  # the hostile record next to an untouched one: the good one must still go through
        seed = [draw(st.sampled_from(list(seeds))), seed]
    return to_text(seed).encode("utf-8", "surrogatepass")
