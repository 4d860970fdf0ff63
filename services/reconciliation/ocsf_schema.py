"""Check an OCSF document against the official schema export bundled with `pydantic-ocsf` (offline, pinned).

pydantic-ocsf's models allow extra keys, so a misspelt attribute would pass them silently. This walks the
document and the schema together: every key must exist on its class or object (inheritance resolved through
`extends`), required attributes must be present, `at_least_one` constraints must hold, arrays must be arrays,
scalars must have their base JSON type, and `*_id` enums must use a defined value.

Profiles: the bundled export lists `$include`d profiles by file name but not their attributes. A document
that declares a profile in `metadata.profiles` may use that profile's attributes; the attribute names of the
profiles closeloop uses are listed here (from the OCSF repository's `profiles/*.json`), and their types still
come from the export's dictionary.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

PROFILE_ATTRIBUTES: dict[str, frozenset[str]] = {
    # profiles/host.json: where a Finding's `actor` (and `device`) come from.
    "host": frozenset({"actor", "device"}),
    # profiles/incident.json: incident handling semantics on a Finding (tickets since 1.5.0).
    "incident": frozenset(
        {
            "assignee",
            "assignee_group",
            "impact",
            "impact_id",
            "impact_score",
            "is_suspected_breach",
            "priority",
            "priority_id",
            "src_url",
            "ticket",
            "tickets",
            "verdict",
            "verdict_id",
        }
    ),
}

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string_t": (str,),
    "integer_t": (int,),
    "long_t": (int,),
    "float_t": (int, float),
    "boolean_t": (bool,),
}


class OcsfSchema:
    def __init__(self, version: str) -> None:
        name = f"v{version.replace('.', '_')}.json"
        with resources.files("ocsf").joinpath("schemas", name).open(encoding="utf-8") as handle:
            self.raw: dict[str, Any] = json.load(handle)
        self.version = version
        self.dictionary: dict[str, Any] = self.raw["dictionary"]["attributes"]
        self.types: dict[str, Any] = self.raw["dictionary"]["types"]["attributes"]

    def _merged(self, section: str, name: str) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
        """Attributes of a class or object with inherited ones (child specs override), and its constraints."""
        entry = self.raw[section].get(name)
        if entry is None:
            raise KeyError(f"OCSF {self.version} has no {section[:-1]} {name!r}")
        parent = entry.get("extends")
        attributes: dict[str, dict[str, Any]] = {}
        constraints: dict[str, Any] = {}
        if parent and parent in self.raw[section]:
            attributes, constraints = self._merged(section, parent)
            attributes = {k: dict(v) for k, v in attributes.items()}
        for attr, spec in entry.get("attributes", {}).items():
            if attr == "$include" or not isinstance(spec, dict):
                continue
            attributes[attr] = {**attributes.get(attr, {}), **{k: v for k, v in spec.items() if v is not None}}
        constraints = {**constraints, **entry.get("constraints", {})}
        return attributes, constraints

    def event_class(self, name: str) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
        return self._merged("events", name)

    def object(self, name: str) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
        return self._merged("objects", name)

    def attribute_type(self, attr: str, spec: dict[str, Any]) -> tuple[str, bool]:
        definition = self.dictionary.get(attr, {})
        type_name = spec.get("type") or definition.get("type") or "json_t"
        return type_name, bool(spec.get("is_array", definition.get("is_array", False)))

    def base_type(self, type_name: str) -> str:
        seen = type_name
        while seen in self.types and self.types[seen].get("type"):
            seen = self.types[seen]["type"]
        return seen

    def enum_values(self, attr: str, spec: dict[str, Any]) -> set[str] | None:
        values = set(spec.get("enum", {}) or {}) | set(self.dictionary.get(attr, {}).get("enum", {}) or {})
        return values or None

    # --- validation ------------------------------------------------------------------------------------------

    def validate_event(self, class_name: str, document: dict[str, Any]) -> list[str]:
        attributes, constraints = self.event_class(class_name)
        profiles = (
            document.get("metadata", {}).get("profiles", []) if isinstance(document.get("metadata"), dict) else []
        )
        extra: dict[str, dict[str, Any]] = {}
        for profile in profiles:
            for attr in PROFILE_ATTRIBUTES.get(profile, ()):
                extra.setdefault(attr, {})
        return self._check(document, {**extra, **attributes}, constraints, class_name)

    def validate_object(self, object_name: str, value: dict[str, Any], path: str) -> list[str]:
        attributes, constraints = self.object(object_name)
        return self._check(value, attributes, constraints, path)

    def _check(
        self, value: dict[str, Any], attributes: dict[str, dict[str, Any]], constraints: dict[str, Any], path: str
    ) -> list[str]:
        errors: list[str] = []
        for attr, spec in attributes.items():
            if spec.get("requirement") == "required" and attr not in value:
                errors.append(f"{path}.{attr}: required attribute missing")
        at_least_one = constraints.get("at_least_one")
        if at_least_one and not any(a in value for a in at_least_one):
            errors.append(f"{path}: needs at least one of {sorted(at_least_one)}")
        just_one = constraints.get("just_one")
        if just_one and sum(a in value for a in just_one) != 1:
            errors.append(f"{path}: needs exactly one of {sorted(just_one)}")
        for attr, item in value.items():
            where = f"{path}.{attr}"
            if attr not in attributes:
                errors.append(f"{where}: not an attribute of this OCSF {self.version} class/object")
                continue
            spec = attributes[attr]
            type_name, is_array = self.attribute_type(attr, spec)
            if is_array:
                if not isinstance(item, list):
                    errors.append(f"{where}: must be an array")
                    continue
                for index, element in enumerate(item):
                    errors += self._check_value(attr, spec, type_name, element, f"{where}[{index}]")
            else:
                errors += self._check_value(attr, spec, type_name, item, where)
        return errors

    def _check_value(self, attr: str, spec: dict[str, Any], type_name: str, item: Any, where: str) -> list[str]:
        if type_name == "object":
            # The generic object type (e.g. `unmapped`): any JSON object, its keys are free.
            return [] if isinstance(item, dict) else [f"{where}: must be an object"]
        if type_name in self.raw["objects"]:
            if not isinstance(item, dict):
                return [f"{where}: must be a {type_name} object"]
            return self.validate_object(type_name, item, where)
        base = self.base_type(type_name)
        if base in ("json_t", "object"):
            return []
        expected = _JSON_TYPES.get(base)
        if expected is None:
            return [f"{where}: unknown OCSF type {type_name}"]
        if isinstance(item, bool) and bool not in expected:
            return [f"{where}: must be {base}, got a boolean"]
        if not isinstance(item, expected):
            return [f"{where}: must be {base}, got {type(item).__name__}"]
        enum = self.enum_values(attr, spec) if attr.endswith("_id") else None
        if enum is not None and str(item) not in enum:
            return [f"{where}: {item!r} is not a defined value ({sorted(enum, key=int)})"]
        return []


@cache
def schema(version: str) -> OcsfSchema:
    return OcsfSchema(version)


def validate_detection_finding(document: dict[str, Any], version: str) -> list[str]:
    """Every problem of a Detection Finding document against the pinned schema (empty: valid)."""
    return schema(version).validate_event("detection_finding", document)
