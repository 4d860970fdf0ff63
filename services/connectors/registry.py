"""The reference connectors by source name: envelope splitting, normalization, identity, parse, state keys."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from connectors import cloudtrail, entra, github, k8s, okta, vault
from connectors.model import ParseContext, ParseResult, RecordIdentity
from connectors.vendor_json import JsonObject


def _no_state(record: JsonObject, ctx: ParseContext) -> list[str]:
    return []


@dataclass(frozen=True)
class Connector:
    source: str  # name in hooks, raw topics and the CLI: okta, entra, cloudtrail, github, k8s, vault
    system: str  # system of the canonical keys it produces: okta, entra, aws, github, k8s, vault
    unwrap: Callable[[Any], list[Any]]  # vendor envelope -> vendor records
    normalize: Callable[[Any], JsonObject]  # one record, re-shaped to the form `interpret` reads
    identify: Callable[[JsonObject], RecordIdentity]
    interpret: Callable[[JsonObject, ParseContext], ParseResult]
    state_keys: Callable[[JsonObject, ParseContext], list[str]] = _no_state

    @classmethod
    def of(cls, module: ModuleType) -> Connector:
        return cls(
            source=module.SOURCE,
            system=module.SYSTEM,
            unwrap=module.unwrap,
            normalize=module.normalize,
            identify=module.identify,
            interpret=module.interpret,
            state_keys=getattr(module, "state_keys", _no_state),
        )


CONNECTORS: dict[str, Connector] = {
    c.source: c for c in (Connector.of(m) for m in (okta, cloudtrail, entra, github, k8s, vault))
}
SOURCES: tuple[str, ...] = tuple(CONNECTORS)
