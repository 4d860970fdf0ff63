"""Entitlement keys and identity vocabulary shared by tickets, grants and the record.

An entitlement is `(principal, resource, privilege)` in canonical form. Principals and resources
are written `<system>:<type>:<id>` (e.g. `okta:user:alice@example.com`, `okta:group:00g1engadmins`,
`aws:role:arn:aws:iam::123456789012:role/ci-deployer`). The id part may itself contain colons (ARNs),
so only the first two colons are separators.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import Field, field_validator

from closeloop.contracts.base import StrictModel

KEY_SEPARATOR = "|"


class IdentityKind(StrEnum):
    """What kind of identity holds an entitlement. Everything but `human` is a non-human identity."""

    HUMAN = "human"
    SERVICE_ACCOUNT = "service_account"
    API_TOKEN = "api_token"  # noqa: S105 - an identity kind, not a credential
    APPLICATION = "application"
    BOT = "bot"
    WORKLOAD = "workload"
    AI_AGENT = "ai_agent"
    UNKNOWN = "unknown"

    @property
    def is_nhi(self) -> bool:
        return self not in (IdentityKind.HUMAN, IdentityKind.UNKNOWN)


def canonical_ref(system: str, ref_type: str, ref_id: str) -> str:
    """`<system>:<type>:<id>` with system and type lower-cased; the id is kept as the source spells it."""
    system, ref_type, ref_id = system.strip().lower(), ref_type.strip().lower(), ref_id.strip()
    if not system or not ref_type or not ref_id:
        raise ValueError("system, type and id must all be non-empty")
    if ":" in system or ":" in ref_type:
        raise ValueError("system and type must not contain ':'")
    if KEY_SEPARATOR in ref_id:
        raise ValueError(f"id must not contain {KEY_SEPARATOR!r}")
    return f"{system}:{ref_type}:{ref_id}"


def split_ref(ref: str) -> tuple[str, str, str]:
    parts = ref.split(":", 2)
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"not a canonical <system>:<type>:<id> reference: {ref!r}")
    return parts[0], parts[1], parts[2]


class EntitlementKey(StrictModel):
    """The join key: who (principal) holds which privilege on what (resource)."""

    principal: str = Field(min_length=5, max_length=600, description="Canonical principal, `<system>:<type>:<id>`.")
    resource: str = Field(min_length=5, max_length=800, description="Canonical resource, `<system>:<type>:<id>`.")
    privilege: str = Field(
        min_length=1,
        max_length=300,
        description="Privilege held on the resource, e.g. `member`, `admin`, `attached`, `read`.",
    )

    @field_validator("principal", "resource")
    @classmethod
    def _canonical(cls, value: str) -> str:
        system, ref_type, ref_id = split_ref(value)
        return canonical_ref(system, ref_type, ref_id)

    @field_validator("privilege")
    @classmethod
    def _privilege(cls, value: str) -> str:
        value = value.strip().lower()
        if not value or KEY_SEPARATOR in value:
            raise ValueError(f"privilege must be non-empty and must not contain {KEY_SEPARATOR!r}")
        return value

    def __str__(self) -> str:
        return KEY_SEPARATOR.join((self.principal, self.resource, self.privilege))

    @property
    def system(self) -> str:
        """The system that holds the entitlement (the resource's system)."""
        return split_ref(self.resource)[0]

    def kafka_key(self) -> bytes:
        return str(self).encode()

    @classmethod
    def parse(cls, text: str) -> Self:
        parts = text.split(KEY_SEPARATOR)
        if len(parts) != 3:
            raise ValueError(f"an entitlement key has three '|'-separated parts: {text!r}")
        return cls(principal=parts[0], resource=parts[1], privilege=parts[2])
