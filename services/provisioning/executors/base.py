"""The executor interface, and the registry that picks the executor for a command.

Executors are idempotent (granting what is granted and removing what is gone both succeed) and report
an `Execution` instead of raising: a command that cannot be done is recorded as failed with the reason,
and its confirmation deadline (REVOKE_UNCONFIRMED) makes the failure visible.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from closeloop.contracts.commands import ProvisioningCommand
from closeloop.contracts.identity import EntitlementKey


class ExecutionStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    AWAITING_ATTESTATION = "awaiting_attestation"


@dataclass(frozen=True)
class Execution:
    status: ExecutionStatus
    detail: str

    @classmethod
    def succeeded(cls, detail: str) -> Execution:
        return cls(ExecutionStatus.SUCCEEDED, detail)

    @classmethod
    def failed(cls, detail: str) -> Execution:
        return cls(ExecutionStatus.FAILED, detail)


class Executor(ABC):
    name: ClassVar[str]

    @abstractmethod
    def supports(self, key: EntitlementKey) -> bool:
        """True when this executor can grant and revoke `key` through its API."""

    @abstractmethod
    async def execute(self, command: ProvisioningCommand) -> Execution:
        """Carry out the command; idempotent, never raises for API errors."""

    async def close(self) -> None:  # noqa: B027 - optional hook, most executors hold nothing
        """Release connections."""


class Executors:
    """API executors in order of preference, then the manual executor for everything else."""

    def __init__(self, api: Sequence[Executor], manual: Executor) -> None:
        self._api = list(api)
        self._manual = manual

    def for_key(self, key: EntitlementKey) -> Executor:
        return next((e for e in self._api if e.supports(key)), self._manual)

    @property
    def names(self) -> list[str]:
        return [e.name for e in self._api] + [self._manual.name]

    async def close(self) -> None:
        for executor in [*self._api, self._manual]:
            await executor.close()
