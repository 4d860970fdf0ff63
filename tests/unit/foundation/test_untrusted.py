"""The edge every ingress parses through: bounded numbers and nesting, no NUL, no lone surrogates."""

from __future__ import annotations

import json

import pytest

from closeloop.contracts.codec import DecodeError, decode
from closeloop.dead_letter import DeadLetter
from closeloop.untrusted import MAX_DEPTH, UNEXPECTED, UntrustedInput, as_bad_input, load_json, screen
from connectors.vendor_json import compact_json, content_id


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"n": ' + b"9" * 5000 + b"}", "integer with more than"),  # json.loads: ValueError (4300 digits)
        (b"[" * 1000 + b"]" * 1000, "nests deeper"),  # json.loads: RecursionError
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "nests deeper"),
        (b'{"published": 1e400}', "number out of range"),
        (b'{"n": NaN}', "not a JSON number"),
        (b'{"id": "\\ud800"}', "lone surrogate"),
        (b'{"\\udfff": 1}', "a key with a lone surrogate"),
        (b'{"name": "a\\u0000b"}', "NUL"),
        (b"\xff\xfe", "not UTF-8"),
        (b"{", "not JSON"),
    ],
)
def test_hostile_documents_are_untrusted_input(body: bytes, reason: str) -> None:
    with pytest.raises(UntrustedInput) as caught:
        load_json(body)
    assert reason in caught.value.reason


def test_what_vendors_send_loads_unchanged() -> None:
    document = {"id": "00u1", "n": 2**62, "at": 1.5e9, "name": "Zoë ✓", "deep": [[[{"a": None}]]]}
    assert load_json(json.dumps(document, ensure_ascii=False).encode()) == document
    assert load_json(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None


def test_screen_catches_values_built_in_python() -> None:
    for value in ({"a": "\x00"}, ["\ud800"], {"x": float("inf")}, {"big": 10**100}):
        with pytest.raises(UntrustedInput):
            screen(value)


def test_event_decoding_refuses_hostile_json_as_decode_error() -> None:
    for value in (b"[" * 1000 + b"]" * 1000, b'{"n": ' + b"1" * 5000 + b"}"):
        with pytest.raises(DecodeError):
            decode(value)


def test_dead_letter_material_never_fails_on_lone_surrogates() -> None:
    record = {"id": "\ud800", "name": "x\udfff"}
    assert content_id(record).startswith("sha256:")
    assert b"\\ud800" in compact_json(record)
    headers = dict(DeadLetter(topic="t", value=b"", reason="bad \ud800", source="hook:\udfff").headers("svc"))
    assert headers["dlq_reason"] == b"bad \\ud800"


def test_as_bad_input_keeps_the_parsers_own_error_and_converts_the_rest() -> None:
    class Bad(ValueError):
        pass

    def overflow() -> None:
        raise OverflowError("date value out of range")

    with pytest.raises(Bad) as caught:
        as_bad_input(Bad, Bad, overflow)
    assert str(caught.value).startswith(UNEXPECTED + "OverflowError")

    def own() -> None:
        raise Bad("mine")

    with pytest.raises(Bad, match=r"^mine$"):
        as_bad_input(Bad, Bad, own)
