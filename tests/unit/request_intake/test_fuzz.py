"""Bad input never crashes a normalizer: any JSON yields observations, skips or Unmappable, nothing else."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from request_intake.normalizers import normalize
from request_intake.observation import TicketObservation
from request_intake.problems import Invalid, Skipped, Unmappable
from tests.fuzz.strategies import paths
from tests.unit.request_intake.fixtures import default_mapping, jira_site_mapping, load

json_leaf = (
    st.none() | st.booleans() | st.integers(-(10**15), 10**15) | st.floats(allow_nan=False) | st.text(max_size=40)
)
json_values = st.recursive(
    json_leaf,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)

SEEDS = {
    "servicenow": [
        load("servicenow", name)
        for name in (
            "ritm_approved.json",
            "ritm_approved_display_value_all.json",
            "ritm_nhi_aws_flat_variables.json",
            "incident_break_glass.json",
        )
    ],
    "jira": [load("jira", name) for name in ("cloud_transition_done.json", "server_transition_reopened.json")],
    "generic": [load("generic", "ticket_approved.json")],
}


def replace_at(node: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value


def check(system: str, payload: Any) -> None:
    mapping = jira_site_mapping() if system == "jira" else default_mapping()
    problem: Unmappable | None = None
    results: list[Any] = []
    try:
        results = list(normalize(system, payload, mapping))
    except Unmappable as exc:  # the only error a normalizer may raise: 422 / dead letter, naming a field
        problem = exc
    if problem is not None:
        assert problem.field
        assert problem.reason
    for result in results:
        assert isinstance(result, TicketObservation | Skipped | Invalid)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(system=st.sampled_from(sorted(SEEDS)), payload=json_values)
def test_arbitrary_json(system: str, payload: Any) -> None:
    check(system, payload)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), system=st.sampled_from(sorted(SEEDS)))
def test_real_shapes_with_one_value_replaced(data: st.DataObject, system: str) -> None:
    seed = copy.deepcopy(data.draw(st.sampled_from(SEEDS[system])))
    path = data.draw(st.sampled_from(paths(seed)[1:]))  # [0] is the root
    replace_at(seed, path, data.draw(json_values))
    check(system, seed)
