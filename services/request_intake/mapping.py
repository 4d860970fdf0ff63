"""The per-source field mapping: defaults shipped in `default_mapping.yaml`, overridden by a site file.

The file says which vendor field holds the principal, resource, privilege, duration, owner and kind, and
how vendor states map to canonical ticket statuses. It is validated strictly (unknown keys are errors) so
a typo fails at start-up instead of silently skipping tickets.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from closeloop.contracts.identity import IdentityKind
from closeloop.contracts.tickets import TicketKind, TicketTransition

DEFAULT_MAPPING = "default_mapping.yaml"


class MappingError(ValueError):
    """The mapping file cannot be used; the message names the file and the offending key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldPaths(_Strict):
    """Candidate paths per logical field; the first path holding a non-empty value wins."""

    requested_for: tuple[str, ...] = ()
    requested_for_kind: tuple[str, ...] = ()
    access_system: tuple[str, ...] = ()
    access_resource: tuple[str, ...] = ()
    access_privilege: tuple[str, ...] = ()
    access_duration: tuple[str, ...] = ()
    access_until: tuple[str, ...] = ()
    access_owner: tuple[str, ...] = ()
    request_kind: tuple[str, ...] = ()
    business_justification: tuple[str, ...] = ()
    project: tuple[str, ...] = ()
    incident: tuple[str, ...] = ()
    window_start: tuple[str, ...] = ()
    window_end: tuple[str, ...] = ()
    requested_by: tuple[str, ...] = ()
    approvers: tuple[str, ...] = ()
    catalog_item: tuple[str, ...] = ()
    request_type: tuple[str, ...] = ()


def _lower_keys(value: dict[str, Any]) -> dict[str, Any]:
    return {str(k).strip().lower(): v for k, v in value.items()}


def fold(text: str) -> str:
    """Case-, space-, dash- and underscore-insensitive spelling used for alias lookups."""
    return " ".join(text.strip().lower().replace("_", " ").replace("-", " ").split())


class CommonMapping(_Strict):
    systems: tuple[str, ...] = ()
    system_aliases: dict[str, str] = Field(default_factory=dict)
    kind_aliases: dict[str, TicketKind] = Field(default_factory=dict)
    identity_kind_aliases: dict[str, IdentityKind] = Field(default_factory=dict)
    principal_kinds_by_type: dict[str, IdentityKind] = Field(default_factory=dict)
    default_privileges: dict[str, str] = Field(default_factory=dict)
    identity_system: str | None = None

    @field_validator("systems")
    @classmethod
    def _systems(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(s.strip().lower() for s in value)

    @field_validator("system_aliases", "kind_aliases", "identity_kind_aliases", mode="before")
    @classmethod
    def _folded(cls, value: Any) -> Any:
        return {fold(str(k)): v for k, v in value.items()} if isinstance(value, dict) else value

    @field_validator("principal_kinds_by_type", "default_privileges", mode="before")
    @classmethod
    def _lowered(cls, value: Any) -> Any:
        return _lower_keys(value) if isinstance(value, dict) else value


class ServiceNowTable(_Strict):
    kind: TicketKind
    states: dict[str, TicketTransition]
    approvals: dict[str, TicketTransition] = Field(default_factory=dict)
    cancelled_stages: tuple[str, ...] = ()

    @field_validator("states", mode="before")
    @classmethod
    def _state_keys(cls, value: Any) -> Any:
        # YAML reads `1:` as an integer; ServiceNow sends "1".
        return {str(k).strip(): v for k, v in value.items()} if isinstance(value, dict) else value

    @field_validator("approvals", mode="before")
    @classmethod
    def _approval_keys(cls, value: Any) -> Any:
        return {fold(str(k)): v for k, v in value.items()} if isinstance(value, dict) else value

    @field_validator("cancelled_stages")
    @classmethod
    def _stages(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(fold(s) for s in value)


class ServiceNowMapping(_Strict):
    instance_url: str | None = None
    date_formats: tuple[str, ...] = ()
    timezone: str = "UTC"
    number_prefixes: dict[str, str] = Field(default_factory=dict)
    tables: dict[str, ServiceNowTable] = Field(default_factory=dict)
    catalog_items: dict[str, TicketKind] = Field(default_factory=dict)
    fields: FieldPaths = FieldPaths()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("catalog_items", mode="before")
    @classmethod
    def _items(cls, value: Any) -> Any:
        return {fold(str(k)): v for k, v in value.items()} if isinstance(value, dict) else value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class JiraMapping(_Strict):
    base_url: str | None = None
    projects: tuple[str, ...] = ()
    issue_types: dict[str, TicketKind] = Field(default_factory=dict)
    request_types: dict[str, TicketKind] = Field(default_factory=dict)
    statuses: dict[str, TicketTransition] = Field(default_factory=dict)
    status_categories: dict[str, TicketTransition] = Field(default_factory=dict)
    rejected_resolutions: tuple[str, ...] = ()
    cancelled_resolutions: tuple[str, ...] = ()
    fields: FieldPaths = FieldPaths()

    @field_validator("issue_types", "request_types", mode="before")
    @classmethod
    def _folded(cls, value: Any) -> Any:
        return {fold(str(k)): v for k, v in value.items()} if isinstance(value, dict) else value

    @field_validator("statuses", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> Any:
        # Jira status ids are strings on the wire; YAML may read them as integers.
        return {str(k).strip(): v for k, v in value.items()} if isinstance(value, dict) else value

    @field_validator("status_categories", mode="before")
    @classmethod
    def _categories(cls, value: Any) -> Any:
        return _lower_keys(value) if isinstance(value, dict) else value

    @field_validator("rejected_resolutions", "cancelled_resolutions")
    @classmethod
    def _resolutions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(fold(v) for v in value)

    @field_validator("fields")
    @classmethod
    def _custom_field_shorthand(cls, value: FieldPaths) -> FieldPaths:
        expanded = {
            name: tuple(f"fields.{p}" if p.startswith("customfield_") else p for p in paths)
            for name, paths in value.model_dump().items()
        }
        return FieldPaths(**expanded)


class GenericMapping(_Strict):
    states: dict[str, TicketTransition] = Field(default_factory=dict)

    @field_validator("states", mode="before")
    @classmethod
    def _folded(cls, value: Any) -> Any:
        return {fold(str(k)): v for k, v in value.items()} if isinstance(value, dict) else value


class Mapping(_Strict):
    common: CommonMapping
    servicenow: ServiceNowMapping
    jira: JiraMapping
    generic: GenericMapping = GenericMapping()


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge mappings; lists and scalars in `override` replace those in `base`."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(text: str, origin: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MappingError(f"{origin}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise MappingError(f"{origin}: the top level must be a mapping")
    return data


def default_mapping_data() -> dict[str, Any]:
    text = resources.files("request_intake").joinpath(DEFAULT_MAPPING).read_text(encoding="utf-8")
    return _read_yaml(text, DEFAULT_MAPPING)


def load_mapping(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Mapping:
    """The defaults, merged with the site file at `path` (if any), then with `overrides` (tests, CLI)."""
    data = default_mapping_data()
    origin = DEFAULT_MAPPING
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise MappingError(f"{path}: cannot read the mapping file: {exc.strerror}") from exc
        data = merge(data, _read_yaml(text, str(path)))
        origin = str(path)
    if overrides:
        data = merge(data, overrides)
    try:
        return Mapping.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors(include_url=False, include_input=False)
        )
        raise MappingError(f"{origin}: {problems}") from exc
