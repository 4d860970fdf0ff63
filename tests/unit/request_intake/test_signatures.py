"""Webhook authenticity: Standard Webhooks and Jira's X-Hub-Signature, in constant time."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from request_intake.signatures import (
    HubSignatureVerifier,
    SignatureRejected,
    StandardWebhooksVerifier,
    sign_hub,
    sign_standard,
)

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
OTHER = "whsec_" + base64.b64encode(b"fedcba9876543210fedcba9876543210").decode()
BODY = b'{"sys_id": "abc", "state": "3"}'
Mutation = Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]]


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def rejected(verifier: StandardWebhooksVerifier | HubSignatureVerifier, body: bytes, headers: dict[str, str]) -> str:
    with pytest.raises(SignatureRejected) as caught:
        verifier.verify(body, lower(headers))
    return caught.value.reason


def test_standard_webhooks_accepts_a_fresh_signed_delivery() -> None:
    at = datetime.now(UTC)
    verified = StandardWebhooksVerifier(SECRET).verify(BODY, sign_standard(SECRET, "msg_1", BODY, at))
    assert verified.delivery_id == "msg_1"
    assert verified.timestamp == datetime.fromtimestamp(int(at.timestamp()), tz=UTC)


def test_standard_webhooks_accepts_one_valid_signature_among_several() -> None:
    headers = sign_standard(SECRET, "msg_2", BODY)
    headers["webhook-signature"] = (
        "v1,AAAA "
        + sign_standard(OTHER, "msg_2", BODY)["webhook-signature"].split(" ")[0]
        + " "
        + headers["webhook-signature"]
    )
    assert StandardWebhooksVerifier(SECRET).verify(BODY, headers).delivery_id == "msg_2"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h, b: (h, b + b" "), "bad_signature"),  # body changed
        (lambda h, b: ({**h, "webhook-id": "msg_other"}, b), "bad_signature"),  # id changed
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b), "missing_signature"),
        (lambda h, b: ({**h, "webhook-signature": "v1,not base64!"}, b), "bad_signature"),
        (lambda h, b: ({**h, "webhook-signature": "garbage"}, b), "bad_signature"),
        (lambda h, b: ({**h, "webhook-signature": "v2," + h["webhook-signature"][3:]}, b), "bad_signature"),
        (lambda h, b: ({**h, "webhook-timestamp": "soon"}, b), "bad_signature"),
        (lambda h, b: ({**h, "webhook-id": "x" * 300}, b), "bad_signature"),
        (lambda h, b: (h, b"\xff\xfe"), "bad_signature"),
    ],
)
def test_standard_webhooks_rejections(mutate: Mutation, reason: str) -> None:
    headers, body = mutate(sign_standard(SECRET, "msg_3", BODY), BODY)
    assert rejected(StandardWebhooksVerifier(SECRET), body, headers) == reason


def test_standard_webhooks_wrong_secret() -> None:
    assert rejected(StandardWebhooksVerifier(SECRET), BODY, sign_standard(OTHER, "msg_4", BODY)) == "bad_signature"


@pytest.mark.parametrize("offset", [timedelta(minutes=-6), timedelta(minutes=6)])
def test_standard_webhooks_timestamp_outside_five_minutes(offset: timedelta) -> None:
    headers = sign_standard(SECRET, "msg_5", BODY, datetime.now(UTC) + offset)
    assert rejected(StandardWebhooksVerifier(SECRET), BODY, headers) == "stale_timestamp"


def test_standard_webhooks_inside_the_tolerance() -> None:
    headers = sign_standard(SECRET, "msg_6", BODY, datetime.now(UTC) - timedelta(minutes=4))
    assert StandardWebhooksVerifier(SECRET).verify(BODY, headers).delivery_id == "msg_6"


def test_hub_signature_accepts_the_body_hmac() -> None:
    headers = lower(sign_hub("jira-secret", BODY))
    assert HubSignatureVerifier("jira-secret").verify(BODY, headers).delivery_id is None
    upper = {"x-hub-signature": headers["x-hub-signature"].upper().replace("SHA256=", "sha256=")}
    assert HubSignatureVerifier("jira-secret").verify(BODY, upper).delivery_id is None


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing_signature"),
        ({"X-Hub-Signature": "sha1=abcdef"}, "bad_signature"),
        ({"X-Hub-Signature": "sha256="}, "bad_signature"),
        ({"X-Hub-Signature": "sha256=" + "0" * 64}, "bad_signature"),
        ({"X-Hub-Signature": "sha256=é"}, "bad_signature"),
    ],
)
def test_hub_signature_rejections(headers: dict[str, str], reason: str) -> None:
    assert rejected(HubSignatureVerifier("jira-secret"), BODY, headers) == reason


def test_hub_signature_wrong_secret_or_body() -> None:
    assert rejected(HubSignatureVerifier("jira-secret"), BODY, sign_hub("other", BODY)) == "bad_signature"
    assert rejected(HubSignatureVerifier("jira-secret"), BODY + b"x", sign_hub("jira-secret", BODY)) == "bad_signature"
