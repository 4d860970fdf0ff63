"""Vendor payloads to ticket observations, one module per source; `normalize` picks the right one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from request_intake.mapping import Mapping
from request_intake.normalizers.generic import normalize_generic
from request_intake.normalizers.jira import normalize_jira
from request_intake.normalizers.servicenow import normalize_servicenow
from request_intake.observation import TicketObservation
from request_intake.problems import Invalid, Skipped

SYSTEMS = ("servicenow", "jira", "generic")

Normalized = Sequence[TicketObservation | Skipped | Invalid]


def normalize(system: str, payload: Any, mapping: Mapping) -> Normalized:
    """Observations (or skips) for every ticket in `payload`; Invalid for a bad record of a batch whose
    other records are sound; raises Unmappable when nothing in the payload can be mapped."""
    if system == "servicenow":
        return normalize_servicenow(payload, mapping)
    if system == "jira":
        return normalize_jira(payload, mapping)
    if system == "generic":
        return normalize_generic(payload, mapping)
    raise ValueError(f"unknown ITSM system {system!r}")


__all__ = ["SYSTEMS", "Normalized", "normalize"]
