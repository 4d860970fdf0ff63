"""Loading the hand-written vendor fixtures under tests/data/ and the Jira site mapping."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from request_intake.mapping import Mapping, load_mapping

DATA = Path(__file__).resolve().parents[2] / "data"


def load(source: str, name: str) -> Any:
    return copy.deepcopy(_load(source, name))


@cache
def _load(source: str, name: str) -> Any:
    return json.loads((DATA / source / name).read_text())


def raw(source: str, name: str) -> bytes:
    return (DATA / source / name).read_bytes()


@cache
def default_mapping() -> Mapping:
    return load_mapping()


@cache
def jira_site_mapping() -> Mapping:
    return load_mapping(DATA / "jira" / "site_mapping.yaml")
