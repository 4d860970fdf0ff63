"""Every regular expression that reads vendor data runs in linear time on bounded input.

Two checks, neither timed: (1) structurally, no pattern holds a construct that can backtrack
exponentially (a repetition inside an unbounded repetition, a backreference); (2) the inputs the
patterns see are capped in length, and the one pattern that was quadratic (the email check: two
adjacent `[^@\\s]+` around a dot, retried from every dot) is replaced by linear scans.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

import pytest

import connectors
import request_intake
from closeloop.contracts import identity as identity_contract
from connectors.identity import (
    DEFAULT_AGENT_PATTERNS,
    DEFAULT_BOT_PATTERNS,
    DEFAULT_CLASSIFIER,
    DEFAULT_SERVICE_PATTERNS,
    MAX_CLASSIFIED_NAME_CHARS,
    MAX_EMAIL_CHARS,
    looks_like_email,
)
from connectors.timestamps import MAX_TIMESTAMP_CHARS, parse_timestamp
from provisioning.executors import vendor_ids
from request_intake.dates import MAX_DATE_CHARS, parse_datetime

REPEATS = {sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT, getattr(sre_parse, "POSSESSIVE_REPEAT", None)}


def _module_patterns() -> dict[str, re.Pattern[str]]:
    found: dict[str, re.Pattern[str]] = {}
    modules: list[Any] = [identity_contract, vendor_ids]
    for package in (connectors, request_intake):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            modules.append(importlib.import_module(info.name))
    for module in modules:
        for name, value in vars(module).items():
            if isinstance(value, re.Pattern) and isinstance(value.pattern, str):
                found[f"{module.__name__}.{name}"] = value
    for group, patterns in (
        ("agent", DEFAULT_AGENT_PATTERNS),
        ("bot", DEFAULT_BOT_PATTERNS),
        ("service", DEFAULT_SERVICE_PATTERNS),
    ):
        for i, pattern in enumerate(patterns):
            found[f"classifier.{group}[{i}]"] = re.compile(pattern)
    return found


PATTERNS = _module_patterns()


def _risky(items: Any, inside_unbounded: bool = False) -> str | None:
    """The first construct that can backtrack super-linearly, or None."""
    for op, arg in items:
        if op in REPEATS:
            _, high, body = arg
            if inside_unbounded:
                return "a repetition inside an unbounded repetition"
            unbounded = high == sre_parse.MAXREPEAT
            found = _risky(body, inside_unbounded or unbounded)
            if found:
                return found
        elif op == sre_parse.SUBPATTERN:
            found = _risky(arg[-1], inside_unbounded)
            if found:
                return found
        elif op == sre_parse.BRANCH:
            for branch in arg[1]:
                found = _risky(branch, inside_unbounded)
                if found:
                    return found
        elif op in (sre_parse.GROUPREF, sre_parse.GROUPREF_EXISTS):
            return "a backreference"
        elif op in (sre_parse.ASSERT, sre_parse.ASSERT_NOT):
            found = _risky(arg[1], inside_unbounded)
            if found:
                return found
    return None


def test_the_inventory_covers_the_vendor_parsers() -> None:
    names = set(PATTERNS)
    assert any(n.startswith("connectors.vault.") for n in names)
    assert any(n.startswith("connectors.timestamps.") for n in names)
    assert any(n.startswith("request_intake.canonical.") for n in names)
    assert any(n.startswith("classifier.") for n in names)
    assert len(names) >= 25


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_no_pattern_can_backtrack_catastrophically(name: str) -> None:
    assert _risky(sre_parse.parse(PATTERNS[name].pattern)) is None


def test_the_checker_catches_the_classic_shapes() -> None:
    # Overlapping alternatives under a repetition (`(a|aa)*`) are not detected: no pattern here repeats an
    # alternation of anything but fixed keywords, and the length caps bound them anyway.
    for pattern in (r"(a+)+$", r"(?:\w*\s?)*x", r"(?:a*b?)*c", r"(x)\1"):
        assert _risky(sre_parse.parse(pattern)) is not None, pattern


ADVERSARIAL = [
    "a@" + "a." * 20000 + "@",
    "a" * 40000 + "!",
    "-" * 40000,
    "/" * 40000,
    "system:serviceaccount:" + ":" * 40000,
    "arn:aws:" + ":" * 40000,
    "auth/" + "x/role/" * 5000 + "/",
    "KeyIdentifier=" * 3000,
]


def test_adversarial_inputs_are_refused_by_the_length_caps() -> None:
    for value in ADVERSARIAL:
        assert not looks_like_email(value)  # over MAX_EMAIL_CHARS: refused before any scan
        assert DEFAULT_CLASSIFIER.kind_from_names([value + " bot"]) is None  # over the classifier cap
        with pytest.raises(ValueError, match="longer than"):
            parse_timestamp(value)
        assert parse_datetime(value) is None
    assert MAX_EMAIL_CHARS < 1000
    assert MAX_CLASSIFIED_NAME_CHARS < 1000
    assert MAX_TIMESTAMP_CHARS <= MAX_DATE_CHARS <= 64


def test_names_within_the_cap_are_still_classified() -> None:
    assert DEFAULT_CLASSIFIER.kind_from_names(["dependabot[bot]"]) is not None
    assert DEFAULT_CLASSIFIER.kind_from_names(["x" * (MAX_CLASSIFIED_NAME_CHARS - 5) + "[bot]"]) is not None
