"""Bodies into records: JSON, JSON lines, EventBridge detail, each source's envelope."""

from __future__ import annotations

import json

import pytest

from connectors.envelopes import MalformedBody, parse_body, records_of
from connectors.registry import CONNECTORS
from tests.unit.connectors.support import fixture


def test_json_and_json_lines() -> None:
    assert parse_body(b'{"a": 1}') == {"a": 1}
    assert parse_body(b'{"a": 1}\n\n{"b": 2}\n') == [{"a": 1}, {"b": 2}]
    assert parse_body(b"\xef\xbb\xbf[1, 2]") == [1, 2]  # UTF-8 byte order mark


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"not json", "not JSON"),
        (b'{"a": 1}\n{broken', "neither JSON nor JSON lines"),
        (b"\xff\xfe\x00", "not UTF-8"),
    ],
)
def test_malformed_bodies(raw: bytes, reason: str) -> None:
    with pytest.raises(MalformedBody, match=reason):
        parse_body(raw)


def test_eventbridge_detail_is_unwrapped_for_any_source() -> None:
    detail = fixture("github", "org_add_member")
    envelope = {"version": "0", "detail-type": "GitHub Audit Log Entry", "source": "custom.github", "detail": detail}
    assert records_of(CONNECTORS["github"], envelope) == [detail]


@pytest.mark.parametrize(
    ("source", "name", "count"),
    [
        ("okta", "event_hook_delivery", 3),
        ("cloudtrail", "s3_delivery_records", 3),
        ("cloudtrail", "eventbridge_attach_role_policy", 1),
        ("entra", "graph_list_response", 2),
        ("github", "api_page", 3),
        ("k8s", "webhook_eventlist", 2),
        ("vault", "policy_write", 2),
    ],
)
def test_source_envelopes(source: str, name: str, count: int) -> None:
    assert len(records_of(CONNECTORS[source], fixture(source, name))) == count


def test_json_lines_of_envelopes_are_flattened() -> None:
    hook = fixture("okta", "event_hook_delivery")
    body = parse_body((json.dumps(hook) + "\n" + json.dumps(hook)).encode())
    assert len(records_of(CONNECTORS["okta"], body)) == 6


def test_cloudwatch_logs_subscription_messages_are_decoded() -> None:
    event = fixture("k8s", "crb_create")
    body = {
        "messageType": "DATA_MESSAGE",
        "logGroup": "/aws/eks/prod/cluster",
        "logStream": "kube-apiserver-audit-1",
        "logEvents": [{"id": "1", "timestamp": 1730800800000, "message": json.dumps(event)}],
    }
    assert records_of(CONNECTORS["k8s"], body) == [event]
