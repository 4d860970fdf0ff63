"""Control mappings per rule: OWASP Non-Human Identities Top 10 (2025), NIST CSF 2.0 (PR.AA), MITRE ATT&CK
where a technique fits, and the remediation a SOC analyst is pointed to.

OWASP NHI entries are attached only when the identity is non-human (the list is about NHIs).
"""

from __future__ import annotations

from dataclasses import dataclass

from closeloop.contracts.alerts import DriftRule

ATTACK_VERSION = "v17"


@dataclass(frozen=True)
class Technique:
    uid: str
    name: str
    tactic_uid: str
    tactic_name: str


ACCOUNT_MANIPULATION = Technique("T1098", "Account Manipulation", "TA0003", "Persistence")
VALID_ACCOUNTS = Technique("T1078", "Valid Accounts", "TA0003", "Persistence")


@dataclass(frozen=True)
class Controls:
    owasp_nhi: tuple[str, ...]
    nist_csf: tuple[str, ...]
    technique: Technique | None
    remediation: str
    other: tuple[tuple[str, str], ...] = ()


NHI1 = "NHI1:2025 Improper Offboarding"
NHI5 = "NHI5:2025 Overprivileged NHI"
NHI7 = "NHI7:2025 Long-Lived Secrets"
PR_AA_01 = "PR.AA-01"  # identities and credentials of users, services and hardware are managed
PR_AA_05 = "PR.AA-05"  # access permissions are defined, managed, enforced and reviewed (least privilege)

CONTROLS: dict[DriftRule, Controls] = {
    DriftRule.UNTICKETED_GRANT: Controls(
        (NHI5,), (PR_AA_05,), ACCOUNT_MANIPULATION, "Remove the grant, or attach the approved ticket that allows it."
    ),
    DriftRule.CLOSED_NOT_REMOVED: Controls(
        (NHI1,), (PR_AA_05,), VALID_ACCOUNTS, "Revoke the access the closed ticket required removed, then verify."
    ),
    DriftRule.EXPIRED_STILL_LIVE: Controls(
        (NHI1,), (PR_AA_05,), VALID_ACCOUNTS, "Revoke the expired entitlement at the source, or renew it by ticket."
    ),
    DriftRule.REVOKE_UNCONFIRMED: Controls(
        (NHI1,), (PR_AA_05,), VALID_ACCOUNTS, "Check the executor and the source; revoke by hand if needed."
    ),
    DriftRule.SCOPE_EXCEEDS_APPROVAL: Controls(
        (NHI5,), (PR_AA_05,), ACCOUNT_MANIPULATION, "Reduce the grant to the approved privilege, or approve it."
    ),
    DriftRule.NO_OWNER: Controls(
        (NHI1,), (PR_AA_01, PR_AA_05), None, "Assign an accountable, active owner to the entitlement."
    ),
    DriftRule.NO_EXPIRY: Controls(
        (NHI5,), (PR_AA_05,), None, "Set an expiry on the entitlement or request time-bound access instead."
    ),
    DriftRule.RECERT_OVERDUE: Controls((NHI5,), (PR_AA_05,), None, "Have the owner recertify or revoke the access."),
    DriftRule.EXCEPTION_EXPIRED: Controls(
        (NHI5,), (PR_AA_05,), VALID_ACCOUNTS, "Revoke the break-glass access now; review its use during the window."
    ),
    DriftRule.GRANT_TO_INACTIVE_PRINCIPAL: Controls(
        (NHI1,), (PR_AA_01, PR_AA_05), ACCOUNT_MANIPULATION, "Revoke the grant and investigate who made it."
    ),
    DriftRule.STALE_CREDENTIAL: Controls((NHI7,), (PR_AA_01,), None, "Rotate the credential and retire the old one."),
    DriftRule.FULFILMENT_MISSING: Controls(
        (), (PR_AA_05,), None, "Provision the approved access or correct the ticket's state."
    ),
    DriftRule.UNREVIEWED_AUTOMATED_CHANGE: Controls(
        (NHI5,),
        (PR_AA_05,),
        ACCOUNT_MANIPULATION,
        "Review the automated change with a human approver; revert it if not approved.",
        other=(("NIST AI RMF 1.0", "GOVERN 3.2 human oversight of AI systems"),),
    ),
    DriftRule.INPUT_STALLED: Controls(
        (),
        ("DE.CM-01",),  # networks and network services are monitored (here: the monitoring's own inputs)
        None,
        "Restart or unblock the named stage (request-intake or a connector) and check its raw input's lag; "
        "held drift findings are judged as soon as the stream catches up.",
    ),
}
