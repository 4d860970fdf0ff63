"""Every real event of the vendor sample corpus: grants and revokes yield the right event, others none.

The samples live in `tests/data/vendor-samples/` (their origins in `SOURCES.md` there). They are public
audit records copied as data, not written for us: this is the check that the connectors understand what
the IAM systems really send.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from closeloop.contracts.grants import GrantEvent, PrincipalStatusChanged
from connectors.envelopes import records_of
from connectors.errors import MalformedRecord
from connectors.model import ConnectorEvent, StateEntry
from connectors.registry import CONNECTORS
from tests.support.vendor_samples import vendor_samples_dir
from tests.unit.connectors.support import RECEIVED_AT, context


@dataclass(frozen=True)
class Grant:
    action: str
    principal: str
    resource: str
    privilege: str
    kind: str


@dataclass(frozen=True)
class Line:
    """What one sample line must yield: its grant events (in order), status events, actor and time."""

    grants: tuple[Grant, ...] = ()
    statuses: tuple[tuple[str, str], ...] = ()
    actor: tuple[str, bool] | None = None
    time: str | None = None
    malformed: str | None = None
    skipped: tuple[str, ...] = field(default=())


NONE = Line()


def g(action: str, principal: str, resource: str, privilege: str, kind: str) -> Grant:
    return Grant(action, principal, resource, privilege, kind)


OKTA = {
    1: Line(
        grants=(g("grant", "okta:user:test@this.com", "okta:group:00g8mo0l5wuTxmoIC0h7", "member", "human"),),
        actor=("okta:user:actor@org.com", False),
        time="2018-07-30T16:25:02.936000+00:00",
    ),
    2: Line(
        grants=(g("grant", "okta:user:test@this.com", "okta:app:0oabfkvxe1npBRdow0h7", "assigned", "human"),),
        actor=("okta:user:actor@org.com", False),
        time="2018-07-31T12:02:31.078000+00:00",
    ),
    3: Line(
        grants=(g("revoke", "okta:user:test.com", "okta:group:123", "member", "human"),),
        actor=("okta:user:example", False),
        time="2021-12-13T01:47:08.556000+00:00",
    ),
    4: NONE,  # event hook envelope around user.session.start
    5: Line(
        grants=(
            g("grant", "okta:user:alice@acme.io", "okta:adminrole:SUPER_ADMIN", "assigned", "human"),
            g("grant", "okta:user:alice@acme.io", "okta:adminrole:READ_ONLY_ADMIN", "assigned", "human"),
        ),
        actor=("okta:user:jack@acme.io", False),
        time="2020-11-25T21:27:03.496000+00:00",
    ),
    6: NONE,  # user.session.impersonation.grant: Okta support access, not an entitlement of the org
    7: Line(
        grants=(g("grant", "okta:apitoken:00Tpki36zlWjhjQ1u2p4", "okta:org:user@example.com", "token", "api_token"),),
        actor=("okta:user:user@example.com", False),
        time="2021-01-08T21:28:34.875000+00:00",
    ),
    8: Line(
        grants=(g("revoke", "okta:apitoken:00Tpki36zlWjhjQ1u2p4", "okta:org:user@example.com", "token", "api_token"),),
        actor=("okta:user:user@example.com", False),
        time="2021-01-08T21:28:34.875000+00:00",
    ),
}

A = "arn:aws:iam::"
CLOUDTRAIL = {
    1: Line(
        grants=(
            g(
                "grant",
                f"aws:user:{A}000000000:user/pwncloud-backdoor-user",
                "aws:policy:arn:aws:iam::aws:policy/AdministratorAccess",
                "attached",
                "unknown",
            ),
        ),
        actor=("arn:aws:sts::000000000:assumed-role/ec2-instance-role/i-06815aa7cf7d21f8f", True),
        time="2024-10-30T20:01:59+00:00",
    ),
    2: Line(
        grants=(
            g(
                "grant",
                f"aws:role:{A}000000000:role/cloudtrail-role",
                "aws:policy:arn:aws:iam::aws:policy/SecurityAudit",
                "attached",
                "workload",
            ),
        ),
        actor=(f"{A}000000000:user/test@elastic.co", False),
        time="2024-10-15T08:28:01+00:00",
    ),
    3: Line(
        grants=(
            g(
                "grant",
                f"aws:group:{A}000000000:group/TestGroupPolicy",
                "aws:policy:arn:aws:iam::aws:policy/ReadOnlyAccess",
                "attached",
                "unknown",
            ),
        ),
        actor=(f"{A}000000000:user/test@elastic.co", False),
        time="2024-10-08T14:12:17+00:00",
    ),
    4: Line(
        grants=(
            g("grant", "aws:account:000000000", f"aws:role:{A}000000000:role/cloudtrail-role", "assume", "unknown"),
        ),
        actor=(f"{A}000000000:user/test@elastic.co", False),
        time="2024-10-15T08:29:21+00:00",
    ),
    5: Line(
        grants=(
            g(
                "grant",
                f"aws:user:{A}123456789012:user/Bob",
                f"aws:group:{A}123456789012:group/admin",
                "member",
                "unknown",
            ),
        ),
        actor=(f"{A}123456789012:user/Alice", False),
        time="2014-03-25T21:08:14+00:00",
    ),
    6: Line(
        grants=(g("grant", f"aws:user:{A}0123456789012:user/Bob", "aws:accesskey:EXAMPLE_KEY_ID", "owner", "unknown"),),
        actor=(f"{A}0123456789012:user/Alice", False),
        time="2020-01-08T20:43:06+00:00",
    ),
    7: Line(
        grants=(g("revoke", f"aws:user:{A}0123456789012:user/Bob", "aws:accesskey:EXAMPLE_ID", "owner", "unknown"),),
        actor=(f"{A}0123456789012:user/Alice", False),
        time="2020-01-08T19:09:36+00:00",
    ),
    8: Line(
        grants=(g("grant", f"aws:user:{A}123456789012:user/Bob", "aws:account:123456789012", "member", "unknown"),),
        statuses=(("active", f"aws:user:{A}123456789012:user/Bob"),),
        actor=(f"{A}123456789012:user/Alice", False),
        time="2014-03-24T21:11:59+00:00",
    ),
    9: Line(
        grants=(
            g(
                "grant",
                f"aws:user:{A}123456789012:user/test-user",
                "aws:policy:arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2",
                "attached",
                "unknown",
            ),
        ),
        actor=("arn:aws:sts::123456789012:assumed-role/a-role/user.name", False),
        time="2023-11-21T23:23:52+00:00",
    ),
    10: Line(
        grants=(
            g(
                "grant",
                f"aws:user:{A}123456789012:user/test-user",
                f"aws:inlinepolicy:{A}123456789012:user/test-user/TestUserDenyAll",
                "inline",
                "unknown",
            ),
        ),
        actor=("arn:aws:sts::123456789012:assumed-role/a-role/user.name", False),
        time="2023-11-21T23:31:17+00:00",
    ),
    11: Line(skipped=("failed_operation",)),  # CreateAccessKey with errorCode LimitExceededException
    12: Line(skipped=("not_a_grant_event",)),  # CreateServiceLinkedRole denied
    13: Line(skipped=("not_a_grant_event",)),  # CreateServiceLinkedRole without parameters
}

ENTRA = {
    1: Line(
        grants=(
            g(
                "grant",
                "entra:serviceprincipal:a7d5dcbe-0627-4ddf-a2f4-86b6785bcc42",
                "entra:credential:d747da7e-e11b-4af2-aede-0487c44067af",
                "owner",
                "application",
            ),
        ),
        actor=("entra:serviceprincipal:b9814691-9ca1-4e55-a1ac-8ef5dd010ec0", True),
        time="2022-01-22T18:15:02.516809+00:00",
    ),
    2: Line(
        grants=(
            g(
                "grant",
                "entra:user:jdoe@contoso.com",
                "entra:group:ef7x527d-6x92-42x4-8x6d-cfxfdfx57f95",
                "member",
                "human",
            ),
        ),
        actor=("entra:user:jdoe@wingtiptoysonline.com", False),
        time="2018-01-09T21:20:02.721537+00:00",
    ),
    3: Line(skipped=("not_a_grant_event",)),  # Azure RBAC "Remove role assignment": Activity log, not Entra
    4: Line(
        grants=(
            g(
                "grant",
                "entra:serviceprincipal:sp-app-456",
                "entra:credential:Client Secret for API Access",
                "owner",
                "application",
            ),
        ),
        actor=("entra:user:frodo@lotr.com", False),
        time="2025-01-15T09:30:20.123456+00:00",
    ),
    5: Line(
        grants=(g("grant", "entra:user:12345", "entra:role:Application Administrator", "assigned", "human"),),
        actor=("entra:user:radahn@starscourge.onmicrosoft.com", False),
        time="2024-12-16T16:32:16.087554+00:00",
    ),
    6: Line(
        grants=(g("grant", "entra:user:12345", "entra:role:Application Administrator", "assigned", "human"),),
        actor=("entra:user:radahn@starscourge.onmicrosoft.com", False),
        time="2024-12-16T16:32:16.087554+00:00",
    ),
    7: Line(
        grants=(
            g(
                "grant",
                "entra:serviceprincipal:13371536-9950-4988-90f4-343566456781",
                "entra:role:Purview Workload Content Writer",
                "assigned",
                "application",
            ),
        ),
        actor=("entra:serviceprincipal:21a5400e-6743-4c9f-812b-1791d41ab2b5", True),
        time="2026-07-17T10:12:27.185138+00:00",
    ),
    8: Line(
        grants=(
            g(
                "grant",
                "entra:serviceprincipal:2c92ce28-126c-47c1-82b0-410b64502989",
                "entra:app:62cb17e7-d25e-4356-ad51-a861585f8634",
                "teamsettings.read.all",
                "application",
            ),
        ),
        actor=("entra:serviceprincipal:8f35f4e9-5c91-42db-a1f7-d77ada4cc0a2", True),
        time="2026-07-19T14:46:48.608604+00:00",
    ),
}

GITHUB = {
    1: Line(skipped=("not_a_grant_event",)),  # org.invite_member: an invitation is not membership yet
    2: Line(
        grants=(g("grant", "github:user:github-user", "github:org:example-org", "member", "human"),),
        actor=("github:user:github-actor", False),
        time="2020-03-04T23:42:30.878000+00:00",
    ),
    3: Line(skipped=("not_a_grant_event",)),  # OAuth app approval names no app in this shape
    4: Line(skipped=("not_a_grant_event",)),  # team.create
    5: Line(
        grants=(g("grant", "github:user:github-user", "github:team:example-org/authors", "member", "human"),),
        actor=("github:user:github-actor", False),
        time="2021-01-25T23:44:26.125000+00:00",
    ),
    6: Line(
        grants=(g("grant", "github:user:github-user", "github:team:example-org/admins", "member", "human"),),
        actor=("github:user:github-actor", False),
        time="2021-01-25T23:46:49.430000+00:00",
    ),
    7: Line(
        grants=(g("grant", "github:team:example-org/authors", "github:repo:example-org/repo-123", "read", "unknown"),),
        actor=("github:user:github-actor", False),
        time="2021-01-25T23:43:03.985000+00:00",
    ),
    8: Line(malformed="names no GitHub App"),  # integration_installation.create without the app
    9: Line(
        grants=(g("grant", "github:user:github-user", "github:repo:example-org/repo-abc-123", "write", "human"),),
        actor=("github:user:github-actor", False),
        time="2021-04-29T21:50:30.434000+00:00",
    ),
    10: Line(skipped=("not_a_grant_event",)),  # protected_branch.create
    11: Line(skipped=("not_a_grant_event",)),  # repo.create
    12: Line(
        grants=tuple(
            g("revoke", "github:user:cat", "github:repo:my-org/my-repo", level, "human")
            for level in ("read", "triage", "write", "maintain", "admin")
        ),
        actor=("github:user:bob", False),
        time="2021-05-18T02:31:58.553000+00:00",
    ),
    13: Line(malformed="new role"),  # org.update_member without the role it changed to
    14: Line(
        grants=(g("grant", "github:user:john1987", "github:org:example-io", "moderator", "human"),),
        actor=("github:user:sarah78", False),
        time="2022-12-11T05:17:28.078000+00:00",
    ),
    15: Line(
        grants=(
            g("revoke", "github:user:bob", "github:org:my-org", "member", "human"),
            g("revoke", "github:user:bob", "github:org:my-org", "admin", "human"),
        ),
        actor=("github:user:cat", False),
        time="2021-05-18T02:31:58.553000+00:00",
    ),
    16: Line(malformed="names no team"),  # team.promote_maintainer with neither team nor org
    17: Line(malformed="names no business"),  # business.add_admin without the enterprise
}

CRB = "k8s:clusterrole:"
K8S = {
    1: Line(skipped=("not_a_grant_event",)),  # lease get
    2: Line(skipped=("not_a_grant_event",)),  # AKS-wrapped lease update
    3: Line(
        grants=(g("grant", "k8s:user:attacker@example.com", f"{CRB}cluster-admin", "bound", "human"),),
        actor=("k8s:user:attacker@example.com", False),
        time=RECEIVED_AT.isoformat(),  # the sample carries no timestamp at all
    ),
    4: Line(skipped=("binding_without_subjects",)),  # RoleBinding with a roleRef and no subjects
    5: Line(skipped=("failed_operation",)),  # 403
    6: Line(
        grants=(g("grant", "k8s:user:minikube", f"{CRB}cluster-admin", "bound", "human"),),
        actor=("k8s:user:minikube-user", False),
        time="2018-10-26T14:26:34.242498+00:00",
    ),
    7: Line(
        grants=(g("grant", "k8s:user:minikube", f"{CRB}system:basic-user", "bound", "human"),),
        actor=("k8s:user:minikube-user", False),
        time="2018-10-26T13:25:18.286399+00:00",
    ),
    # The delete names only the binding; its uid matches line 7's object, whose subjects the cache holds.
    8: Line(
        grants=(g("revoke", "k8s:user:minikube", f"{CRB}system:basic-user", "bound", "human"),),
        actor=("k8s:user:minikube-user", False),
        time="2018-10-26T13:25:47.041484+00:00",
    ),
    9: Line(skipped=("role_definition",)),
    10: Line(skipped=("role_definition",)),
    11: Line(skipped=("role_definition",)),
    12: Line(skipped=("role_definition",)),
    13: Line(statuses=(("active", "k8s:serviceaccount:default/myacct"),), actor=("k8s:user:minikube-user", False)),
    14: Line(statuses=(("deleted", "k8s:serviceaccount:default/myacct"),), actor=("k8s:user:minikube-user", False)),
    15: Line(
        grants=(
            g(
                "grant",
                "k8s:serviceaccount:test2/default",
                "k8s:secret:test2/default-token-7v4pb",
                "token",
                "service_account",
            ),
        ),
        actor=("k8s:user:system:kube-controller-manager", True),
        time="2020-04-21T17:32:29.942468+00:00",
    ),
}

VAULT = {
    1: Line(skipped=("request_line",)),
    2: Line(skipped=("not_a_grant_event",)),  # sys/capabilities-self
    3: Line(skipped=("request_line",)),
    4: Line(skipped=("not_a_grant_event",)),  # pki issue, permission denied
    5: Line(skipped=("request_line",)),
    6: Line(skipped=("not_a_grant_event",)),  # kv write with an error
}

FILES = {
    "okta": ("okta", OKTA),
    "cloudtrail": ("cloudtrail", CLOUDTRAIL),
    "entra": ("entra", ENTRA),
    "github": ("github", GITHUB),
    "k8s_audit": ("k8s", K8S),
    "vault": ("vault", VAULT),
}


@pytest.fixture(scope="module")
def samples_dir() -> Path:
    return vendor_samples_dir()


def _outcomes(source: str, path: Path) -> list[tuple[int, list[ConnectorEvent], str | None, str | None]]:
    """(line number, events, skip reason, malformed reason) for every line, in file order, with state."""
    connector = CONNECTORS[source]
    ctx = context()
    state: dict[str, StateEntry] = {}
    outcomes = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        body: Any = json.loads(line)
        events: list[ConnectorEvent] = []
        skipped: list[str] = []
        malformed: str | None = None
        try:
            for raw in records_of(connector, body):
                record = connector.normalize(raw)
                keys = connector.state_keys(record, ctx)
                result = connector.interpret(record, ctx.with_state({k: state[k] for k in keys if k in state}))
                state.update(result.state_updates)
                events += result.events
                if result.skipped and not result.events:
                    skipped.append(result.skipped)
        except MalformedRecord as exc:
            malformed = exc.reason
        outcomes.append((number, events, ",".join(skipped) or None, malformed))
    return outcomes


@pytest.mark.parametrize("file_name", sorted(FILES))
def test_every_sample_line_yields_exactly_the_expected_events(samples_dir: Path, file_name: str) -> None:
    source, expected = FILES[file_name]
    outcomes = _outcomes(source, samples_dir / f"{file_name}.jsonl")
    assert [n for n, *_ in outcomes] == sorted(expected), "a line was added to or removed from the samples"
    for number, events, skipped, malformed in outcomes:
        want = expected[number]
        where = f"{file_name}.jsonl line {number}"
        if want.malformed:
            assert malformed is not None, f"{where}: expected malformed, got {events}"
            assert want.malformed in malformed, f"{where}: malformed for another reason: {malformed}"
            continue
        assert malformed is None, f"{where}: unexpected malformed record: {malformed}"
        grants = [e for e in events if isinstance(e, GrantEvent)]
        statuses = [e for e in events if isinstance(e, PrincipalStatusChanged)]
        got = tuple(
            Grant(e.action.value, e.key.principal, e.key.resource, e.key.privilege, e.principal_kind.value)
            for e in grants
        )
        assert got == want.grants, f"{where}: grant events differ"
        assert tuple((e.status.value, e.principal) for e in statuses) == want.statuses, f"{where}: status events"
        if not want.grants and not want.statuses:
            assert skipped is not None, f"{where}: a record without events must say why it was skipped"
            if want.skipped:
                assert skipped == ",".join(want.skipped), f"{where}: skipped for {skipped}"
        for event in events:
            if want.actor is not None:
                assert event.actor is not None, f"{where}: no actor"
                assert (event.actor.id, event.actor.is_automation) == want.actor, f"{where}: actor"
            if want.time is not None:
                assert event.occurred_at == datetime.fromisoformat(want.time), f"{where}: time"
            assert event.source_system == CONNECTORS[source].system
            assert event.vendor_event_type


def test_every_sample_file_is_covered(samples_dir: Path) -> None:
    present = {p.stem for p in samples_dir.glob("*.jsonl")}
    iam_files = present - {"jira", "servicenow"}  # ITSM samples belong to request-intake
    assert iam_files == set(FILES)
