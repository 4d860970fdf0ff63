"""The manual executor: for systems with no entitlement API (or none configured). It calls nothing; the
command waits in `command_executions` until a person carries it out and attests who did it, when and
with what evidence (`closeloop attest`). Until then a revoke is unconfirmed, and past its deadline the
expiry service reports it (REVOKE_UNCONFIRMED)."""

from __future__ import annotations

from closeloop.contracts.commands import ProvisioningCommand
from closeloop.contracts.identity import EntitlementKey
from provisioning.executors.base import Execution, ExecutionStatus, Executor


class ManualExecutor(Executor):
    name = "manual"

    def supports(self, key: EntitlementKey) -> bool:
        return True

    async def execute(self, command: ProvisioningCommand) -> Execution:
        return Execution(
            ExecutionStatus.AWAITING_ATTESTATION,
            f"{command.action.value} at {command.target_system} must be done by hand and attested",
        )
