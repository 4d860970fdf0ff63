"""Contracts: frozen v1 JSON keeps loading, schemas match the models, wire input is validated strictly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar, Literal

import jsonschema
import pytest
from pydantic import Field

from closeloop.contracts import codec
from closeloop.contracts.base import Envelope
from closeloop.contracts.codec import EVENT_TYPES, DecodeError, decode, encode
from closeloop.contracts.schema_export import SCHEMA_DIR, render_schemas, schema_file_name
from closeloop.contracts.tickets import TicketEvent

FIXTURES = Path(__file__).parents[2] / "data" / "contracts"


def fixture_bytes(event_type: str) -> bytes:
    return (FIXTURES / f"{event_type}.v1.json").read_bytes()


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_frozen_v1_json_still_loads(event_type: str) -> None:
    event = decode(fixture_bytes(event_type))
    assert type(event) is EVENT_TYPES[event_type]
    assert event.event_type == event_type
    # Re-encoding and decoding is lossless.
    assert decode(encode(event)) == event


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_frozen_fixture_validates_against_committed_json_schema(event_type: str) -> None:
    cls = EVENT_TYPES[event_type]
    schema = json.loads((SCHEMA_DIR / schema_file_name(event_type, cls.SCHEMA_VERSION)).read_text())
    jsonschema.validate(json.loads(fixture_bytes(event_type)), schema)


def test_committed_schemas_match_models() -> None:
    rendered = render_schemas()
    committed = {p.name: p.read_text() for p in SCHEMA_DIR.glob("*.schema.json")}
    stale = sorted(name for name in rendered if committed.get(name) != rendered[name])
    assert not stale, f"JSON Schema out of date for {stale}: run python -m closeloop.contracts.schema_export"
    assert set(committed) >= set(rendered)


def test_every_field_is_described() -> None:
    for cls in EVENT_TYPES.values():
        undocumented = [name for name, field in cls.model_fields.items() if not field.description]
        assert not undocumented, f"{cls.__name__} fields without description: {undocumented}"


def _ticket_json(**overrides: object) -> bytes:
    data = json.loads(fixture_bytes("itsm.ticket.transitioned"))
    data.update(overrides)
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("raw", "reason_part"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"event_type": "nope.event"}', "unknown event_type"),
        (_ticket_json(unexpected_field=1), "unexpected_field"),
        (_ticket_json(occurred_at="2026-01-05T09:30:00"), "occurred_at"),
        (_ticket_json(schema_version="1"), "schema_version"),
        (_ticket_json(schema_version=99), "newer than this release"),
        (_ticket_json(version="7"), "version"),
        (_ticket_json(transition="teleported"), "transition"),
        (_ticket_json(correlation_id=""), "correlation_id"),
    ],
)
def test_bad_wire_input_is_rejected_with_a_reason(raw: bytes, reason_part: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(raw)
    assert reason_part in caught.value.reason


def test_decode_rejects_an_event_on_the_wrong_topic() -> None:
    from closeloop.contracts.grants import GrantEvent

    with pytest.raises(DecodeError, match="does not belong"):
        decode(fixture_bytes("itsm.ticket.transitioned"), expected=GrantEvent)


def test_validation_reason_never_echoes_input_values() -> None:
    secret = "s3cr3t-token-value"
    with pytest.raises(DecodeError) as caught:
        decode(_ticket_json(version=secret))
    assert secret not in caught.value.reason


class _TicketV2(Envelope):
    """A hypothetical v2 of a test event type that renamed `note` to `comment`."""

    EVENT_TYPE: ClassVar[str] = "test.upcast"
    SCHEMA_VERSION: ClassVar[int] = 2
    event_type: Literal["test.upcast"] = Field(description="test")
    comment: str = Field(description="test")


def test_old_versions_are_upcast_before_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(EVENT_TYPES, _TicketV2.EVENT_TYPE, _TicketV2)

    def v1_to_v2(data: dict[str, object]) -> dict[str, object]:
        data["comment"] = data.pop("note")
        return data

    monkeypatch.setitem(codec.UPCASTERS, (_TicketV2.EVENT_TYPE, 1), v1_to_v2)
    old = {
        "event_id": "e1",
        "event_type": "test.upcast",
        "schema_version": 1,
        "occurred_at": "2025-03-01T10:00:00+01:00",
        "source": "test",
        "correlation_id": "c1",
        "note": "written by release 1",
    }
    event = decode(json.dumps(old).encode())
    assert isinstance(event, _TicketV2)
    assert event.schema_version == 2
    assert event.comment == "written by release 1"


def test_missing_upcaster_is_a_decode_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(EVENT_TYPES, _TicketV2.EVENT_TYPE, _TicketV2)
    old = {"event_type": "test.upcast", "schema_version": 1}
    with pytest.raises(DecodeError, match="no upcaster"):
        decode(json.dumps(old).encode())


def test_create_fills_subject_with_the_entitlement_key() -> None:
    event = decode(fixture_bytes("itsm.ticket.transitioned"))
    assert isinstance(event, TicketEvent)
    assert event.subject == "okta:user:alice@example.com|okta:group:00g1engadmins|member"
    rebuilt = TicketEvent.create(**event.model_dump(exclude={"event_type", "schema_version", "subject"}))
    assert rebuilt.subject == event.subject


def test_cloudevents_headers_carry_the_envelope() -> None:
    event = decode(fixture_bytes("iam.grant.changed"))
    headers = dict(codec.cloudevents_headers(event))
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_id"] == event.event_id.encode()
    assert headers["ce_type"] == b"iam.grant.changed"
    assert headers["ce_subject"] == str(event.key).encode()  # type: ignore[attr-defined]
    assert codec.kafka_key(event) == str(event.key).encode()  # type: ignore[attr-defined]
