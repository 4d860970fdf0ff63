"""Bad input never crashes a parser: anything that is not a valid record is a MalformedRecord or a skip."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.envelopes import records_of
from connectors.errors import MalformedRecord
from connectors.registry import CONNECTORS
from tests.unit.connectors.support import DATA, context

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)


def run(source: str, body: Any) -> None:
    connector = CONNECTORS[source]
    ctx = context()
    for raw in records_of(connector, body):
        try:
            record = connector.normalize(raw)
            connector.identify(record)
            keys = connector.state_keys(record, ctx)
            connector.interpret(record, ctx.with_state({}))
            assert isinstance(keys, list)
        except MalformedRecord as exc:
            reason = exc.reason
        else:
            reason = "ok"
        assert reason


@pytest.mark.parametrize("source", sorted(CONNECTORS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=json_values)
def test_random_json_never_crashes(source: str, body: Any) -> None:
    run(source, body)


def _fixture_bodies(source: str) -> list[Any]:
    return [json.loads(p.read_text()) for p in sorted((DATA / source).glob("*.json"))]


def _mutations(value: Any, replacement: Any) -> list[Any]:
    """Copies of `value` with one nested field replaced, one at a time (first 60 paths)."""
    out: list[Any] = []

    def walk(node: Any, rebuild: Any) -> None:
        if len(out) >= 60:
            return
        if isinstance(node, dict):
            for key in node:

                def rebuild_key(new: Any, node: dict[str, Any] = node, key: str = key) -> Any:
                    return rebuild({**node, key: new})

                out.append(rebuild_key(replacement))
                walk(node[key], rebuild_key)
        elif isinstance(node, list):
            for i in range(len(node)):

                def rebuild_index(new: Any, node: list[Any] = node, i: int = i) -> Any:
                    return rebuild([*node[:i], new, *node[i + 1 :]])

                out.append(rebuild_index(replacement))
                walk(node[i], rebuild_index)

    walk(value, lambda new: new)
    return out


@pytest.mark.parametrize("source", sorted(CONNECTORS))
@pytest.mark.parametrize("replacement", [None, "", 7, [], {}, "null", True])
def test_fixtures_with_one_field_broken_never_crash(source: str, replacement: Any) -> None:
    for body in _fixture_bodies(source):
        for mutated in _mutations(body, replacement):
            run(source, mutated)
