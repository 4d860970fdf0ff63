"""Webhook authenticity: Standard Webhooks (ServiceNow, generic) and Jira's `X-Hub-Signature` HMAC.

Both compare in constant time. Standard Webhooks verification is the reference `standardwebhooks`
implementation (HMAC-SHA256 over `id.timestamp.body`, 5-minute timestamp tolerance); replay of a valid
delivery is caught afterwards by the delivery ledger (`deliveries.py`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

# Standard Webhooks' timestamp tolerance (fixed by the reference implementation).
TOLERANCE_S = 300
MAX_DELIVERY_ID = 200


class SignatureRejected(Exception):
    """The delivery is not authentic (or not fresh); `reason` is a stable metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Verified:
    delivery_id: str | None  # the sender's delivery id, when the scheme has one
    timestamp: datetime | None  # the signed send time, when the scheme has one


class Verifier(Protocol):
    def verify(self, body: bytes, headers: Mapping[str, str]) -> Verified: ...


class StandardWebhooksVerifier:
    """`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>` (several space-separated allowed)."""

    def __init__(self, secret: str) -> None:
        self._webhook = Webhook(secret)

    def verify(self, body: bytes, headers: Mapping[str, str]) -> Verified:
        wanted = {name: headers.get(name, "") for name in ("webhook-id", "webhook-timestamp", "webhook-signature")}
        if not all(wanted.values()):
            raise SignatureRejected(
                "missing_signature", "webhook-id, webhook-timestamp and webhook-signature headers are required"
            )
        if len(wanted["webhook-id"]) > MAX_DELIVERY_ID:
            raise SignatureRejected("bad_signature", "webhook-id is too long")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise SignatureRejected("bad_signature", "the body is not UTF-8, so its signature cannot match") from None
        try:
            self._webhook.verify(text, wanted, json_parse=False)
        except WebhookVerificationError as exc:
            message = str(exc)
            if "too old" in message or "too new" in message:
                raise SignatureRejected(
                    "stale_timestamp", f"webhook-timestamp is outside the {TOLERANCE_S}s tolerance"
                ) from None
            raise SignatureRejected("bad_signature", "the signature does not match the body") from None
        except (ValueError, TypeError):  # malformed signature list or base64
            raise SignatureRejected("bad_signature", "webhook-signature is malformed") from None
        sent_at = datetime.fromtimestamp(float(wanted["webhook-timestamp"]), tz=UTC)
        return Verified(delivery_id=wanted["webhook-id"], timestamp=sent_at)


class HubSignatureVerifier:
    """Jira: `X-Hub-Signature: sha256=<hex>`, an HMAC-SHA256 of the raw body with the webhook's secret."""

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    def verify(self, body: bytes, headers: Mapping[str, str]) -> Verified:
        header = headers.get("x-hub-signature") or headers.get("x-hub-signature-256") or ""
        if not header:
            raise SignatureRejected("missing_signature", "the X-Hub-Signature header is required")
        method, _, digest = header.strip().partition("=")
        if method.lower() != "sha256" or not digest:
            raise SignatureRejected("bad_signature", "X-Hub-Signature must be sha256=<hex>")
        expected = hmac.new(self._secret, body, hashlib.sha256).hexdigest().encode()
        if not hmac.compare_digest(expected, digest.strip().lower().encode("utf-8", "replace")):
            raise SignatureRejected("bad_signature", "the signature does not match the body")
        return Verified(delivery_id=None, timestamp=None)


def sign_standard(secret: str, delivery_id: str, body: bytes, at: datetime | None = None) -> dict[str, str]:
    """Headers a Standard Webhooks sender would add (tests, the CLI's `send`)."""
    at = at or datetime.now(UTC)
    signature = Webhook(secret).sign(delivery_id, at, body.decode("utf-8"))
    return {"webhook-id": delivery_id, "webhook-timestamp": str(int(at.timestamp())), "webhook-signature": signature}


def sign_hub(secret: str, body: bytes) -> dict[str, str]:
    """The header Jira would add (tests, the CLI's `send`)."""
    return {"X-Hub-Signature": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}
