"""Secrets that authenticate or sign (hook bearer secrets, HMAC keys, Standard Webhooks keys, API tokens):
an empty value means "not configured", anything else must hold at least `MIN_SECRET_BYTES` bytes of key.

Settings use these types, so a service with a weak secret refuses to start with a message naming the
setting; an empty one leaves the endpoint unconfigured (it refuses every request), never open to anyone.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from pydantic import AfterValidator, SecretStr

MIN_SECRET_BYTES = 24
WHSEC_PREFIX = "whsec_"
_HINT = "generate one with `openssl rand -hex 32` (or `whsec_$(openssl rand -base64 32)` for a whsec key)"


class WeakSecret(ValueError):
    pass


def _present(value: SecretStr | None) -> str | None:
    if value is None:
        return None
    raw = value.get_secret_value()
    return raw if raw.strip() else None


def shared_secret(value: SecretStr | None) -> SecretStr | None:
    """A bearer secret or HMAC key used as its UTF-8 bytes."""
    raw = _present(value)
    if raw is None:
        return None
    if raw != raw.strip():
        raise WeakSecret("must not start or end with whitespace")
    size = len(raw.encode("utf-8", "surrogatepass"))
    if size < MIN_SECRET_BYTES:
        raise WeakSecret(f"is {size} bytes; at least {MIN_SECRET_BYTES} are required: {_HINT}")
    return SecretStr(raw)


def webhook_secret(value: SecretStr | None) -> SecretStr | None:
    """A Standard Webhooks key, `whsec_<base64>`, whose decoded key is long enough."""
    raw = _present(value)
    if raw is None:
        return None
    raw = raw.strip()
    try:
        key = base64.b64decode(raw.removeprefix(WHSEC_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise WeakSecret(f"must be a Standard Webhooks secret: {WHSEC_PREFIX}<base64>") from None
    if len(key) < MIN_SECRET_BYTES:
        raise WeakSecret(f"decodes to {len(key)} bytes; at least {MIN_SECRET_BYTES} are required: {_HINT}")
    return SecretStr(raw)


# Setting types: `None` when unset or empty; a validation error (service refuses to start) when weak.
OptionalSharedSecret = Annotated[SecretStr | None, AfterValidator(shared_secret)]
OptionalWebhookSecret = Annotated[SecretStr | None, AfterValidator(webhook_secret)]
