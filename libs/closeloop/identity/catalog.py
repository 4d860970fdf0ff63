"""The resource catalog, in memory: per system and type, each resource's canonical id, display name and aliases.

Learned from every grant and snapshot (the id a source uses and the display name it shows) and loaded from the
operator's catalog file (aliases people use for a resource). A display name observed later replaces the earlier
one (a rename at the source: the old name stops resolving); the operator's aliases stay until reloaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from closeloop.contracts.identity import canonical_ref, split_ref
from closeloop.identity.graph import OPERATOR
from closeloop.identity.names import fold


@dataclass(frozen=True)
class CatalogEntry:
    resource: str
    display_name: str | None = None
    aliases: frozenset[str] = field(default_factory=frozenset)

    @property
    def parts(self) -> tuple[str, str, str]:
        return split_ref(self.resource)

    def names(self) -> frozenset[str]:
        """Every folded name this resource answers to: its id, its display name, its aliases, and the name its id
        carries (an AWS ARN's last path segment: a policy or role name; a GitHub team's slug)."""
        system, ref_type, ref_id = self.parts
        every = {ref_id, *self.aliases, *((self.display_name,) if self.display_name else ())}
        if (system == "aws" and ref_id.startswith("arn:")) or (system == "github" and ref_type == "team"):
            every.add(ref_id.rsplit("/", 1)[-1])
        return frozenset(fold(n) for n in every if n and n.strip())


class ResourceCatalog:
    def __init__(self) -> None:
        self._entries: dict[str, CatalogEntry] = {}
        self._by_name: dict[tuple[str, str], set[str]] = {}
        self.version = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, resource: str) -> CatalogEntry | None:
        return self._entries.get(resource)

    def entries(self, system: str | None = None) -> list[CatalogEntry]:
        return sorted(
            (e for e in self._entries.values() if system is None or e.parts[0] == system), key=lambda e: e.resource
        )

    def learn(
        self, resource: str, *, display_name: str | None = None, aliases: Iterable[str] = (), origin: str = ""
    ) -> bool:
        """Add or update one resource; True when the catalog changed."""
        resource = canonical_ref(*split_ref(resource))
        current = self._entries.get(resource) or CatalogEntry(resource=resource)
        name = display_name.strip() if display_name and display_name.strip() else current.display_name
        added = frozenset(a.strip() for a in aliases if a and a.strip())
        new_aliases = added if origin == OPERATOR else current.aliases | added
        updated = CatalogEntry(resource=resource, display_name=name, aliases=new_aliases)
        if updated == self._entries.get(resource):
            return False
        self._index(current, remove=True)
        self._entries[resource] = updated
        self._index(updated)
        self.version += 1
        return True

    def _index(self, entry: CatalogEntry, *, remove: bool = False) -> None:
        system = entry.parts[0]
        for name in entry.names():
            slot = (system, name)
            if remove:
                found = self._by_name.get(slot)
                if found is not None:
                    found.discard(entry.resource)
                    if not found:
                        del self._by_name[slot]
            else:
                self._by_name.setdefault(slot, set()).add(entry.resource)

    def find(self, system: str, name: str, ref_type: str | None = None) -> tuple[str, ...]:
        """Resources of `system` (and `ref_type`) answering to `name`, sorted."""
        found = self._by_name.get((system, fold(name)), set())
        return tuple(sorted(r for r in found if ref_type is None or split_ref(r)[1] == ref_type))


def parse_catalog_file(document: Mapping[str, Any]) -> list[tuple[str, str | None, list[str]]]:
    """`{"resources": [{"id": "okta:group:00g1", "name": "Engineering Admins", "aliases": ["eng-admins"]}]}`."""
    entries = document.get("resources")
    if not isinstance(entries, list):
        raise ValueError("a catalog file needs a `resources` list")
    parsed: list[tuple[str, str | None, list[str]]] = []
    for position, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise ValueError(f"resources[{position}] is not an object")
        resource, name, aliases = entry.get("id"), entry.get("name"), entry.get("aliases", [])
        if not isinstance(resource, str):
            raise ValueError(f"resources[{position}].id must be <system>:<type>:<id>")
        try:
            resource = canonical_ref(*split_ref(resource))
        except ValueError as exc:
            raise ValueError(f"resources[{position}].id must be <system>:<type>:<id>") from exc
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ValueError(f"resources[{position}].name must be a non-empty string")
        if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
            raise ValueError(f"resources[{position}].aliases must be a list of non-empty strings")
        parsed.append((resource, name.strip() if name else None, [a.strip() for a in aliases]))
    return parsed
