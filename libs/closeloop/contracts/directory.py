"""Directory events: the identity graph and the resource catalog, announced on compacted topics.

`identity.links.v1` carries `IdentityLinked` (names seen to be one identity, keyed by the link's first name or
the operator's identity id); `catalog.resources.v1` carries `ResourceCatalogued` (one resource's display name and
aliases, keyed by the canonical resource). Compaction keeps the latest statement per key; consumers fold them all.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from closeloop.contracts.base import Envelope


class IdentityLinked(Envelope):
    """Names that are one identity, and which of them are accounts (principals at their source)."""

    EVENT_TYPE: ClassVar[str] = "identity.link.recorded"
    SCHEMA_VERSION: ClassVar[int] = 1

    event_type: Literal["identity.link.recorded"] = Field(description="Always `identity.link.recorded`.")
    names: tuple[str, ...] = Field(
        min_length=1,
        max_length=50,
        description="Canonical references (`github:user:alice-gh`) or `email:<address>` naming one identity.",
    )
    accounts: tuple[str, ...] = Field(
        default=(), max_length=50, description="Those names a source uses as the principal of grants."
    )
    origin: str = Field(
        min_length=1,
        max_length=100,
        description="`operator` (alias file or CLI; wins), `rule` (a correlation rule) or the observing source.",
    )
    identity_id: str | None = Field(
        default=None, max_length=600, description="The identity the operator assigns the names to."
    )

    def record_key(self) -> bytes:
        """Compaction key: the latest statement about an operator identity, or about an account and its names."""
        return (f"operator:{self.identity_id}" if self.identity_id else self.names[0]).encode()


class ResourceCatalogued(Envelope):
    """One resource of the catalog: its canonical id, the display name its source shows, and its aliases."""

    EVENT_TYPE: ClassVar[str] = "catalog.resource.recorded"
    SCHEMA_VERSION: ClassVar[int] = 1

    event_type: Literal["catalog.resource.recorded"] = Field(description="Always `catalog.resource.recorded`.")
    resource: str = Field(min_length=5, max_length=800, description="Canonical resource `<system>:<type>:<id>`.")
    display_name: str | None = Field(default=None, max_length=500, description="Name the source shows, if any.")
    aliases: tuple[str, ...] = Field(
        default=(), max_length=50, description="Other names people use for it (catalog file, operator)."
    )
    origin: str = Field(min_length=1, max_length=100, description="`operator` or the observing source.")

    def record_key(self) -> bytes:
        """Compaction key: the latest statement about the resource."""
        return self.resource.encode()
