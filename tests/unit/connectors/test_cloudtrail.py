"""CloudTrail IAM events: every handled API call, EventBridge and S3 envelopes, errors, trust policies."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from closeloop.contracts.grants import GrantEvent
from closeloop.contracts.identity import IdentityKind
from connectors import cloudtrail
from connectors.errors import MalformedRecord
from tests.unit.connectors.support import Runner, context, fixture, summary

ACCT = "111122223333"
SVC = f"aws:user:arn:aws:iam::{ACCT}:user/svc-backup"
ROLE = f"aws:role:arn:aws:iam::{ACCT}:role/data-pipeline"
GROUP = f"aws:group:arn:aws:iam::{ACCT}:group/Developers"
ADMIN = "aws:policy:arn:aws:iam::aws:policy/AdministratorAccess"
S3RO = "aws:policy:arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
RO = "aws:policy:arn:aws:iam::aws:policy/ReadOnlyAccess"
DAVE = f"aws:user:arn:aws:iam::{ACCT}:user/dave@acme.example"

EXPECTED = {
    "attach_user_policy": [("grant", f"{SVC}|{ADMIN}|attached")],
    "attach_role_policy": [("grant", f"{ROLE}|{S3RO}|attached")],
    "attach_group_policy": [("grant", f"{GROUP}|{RO}|attached")],
    "detach_user_policy": [("revoke", f"{SVC}|{ADMIN}|attached")],
    "detach_role_policy": [("revoke", f"{ROLE}|{S3RO}|attached")],
    "detach_group_policy": [("revoke", f"{GROUP}|{RO}|attached")],
    "put_user_policy": [("grant", f"{SVC}|aws:inlinepolicy:arn:aws:iam::{ACCT}:user/svc-backup/backup-read|inline")],
    "put_role_policy": [("grant", f"{ROLE}|aws:inlinepolicy:arn:aws:iam::{ACCT}:role/data-pipeline/inline-s3|inline")],
    "put_group_policy": [("grant", f"{GROUP}|aws:inlinepolicy:arn:aws:iam::{ACCT}:group/Developers/dev-s3|inline")],
    "delete_user_policy": [
        ("revoke", f"{SVC}|aws:inlinepolicy:arn:aws:iam::{ACCT}:user/svc-backup/backup-read|inline")
    ],
    "delete_role_policy": [
        ("revoke", f"{ROLE}|aws:inlinepolicy:arn:aws:iam::{ACCT}:role/data-pipeline/inline-s3|inline")
    ],
    "delete_group_policy": [("revoke", f"{GROUP}|aws:inlinepolicy:arn:aws:iam::{ACCT}:group/Developers/dev-s3|inline")],
    "add_user_to_group": [("grant", f"{DAVE}|{GROUP}|member")],
    "remove_user_from_group": [("revoke", f"{DAVE}|{GROUP}|member")],
    "create_access_key": [("grant", f"{SVC}|aws:accesskey:AKIA6ODU5DHTNEWKEY01|owner")],
    "delete_access_key": [("revoke", f"{SVC}|aws:accesskey:AKIA6ODU5DHTOLDKEY01|owner")],
    "update_access_key_inactive": [("revoke", f"{SVC}|aws:accesskey:AKIA6ODU5DHTOLDKEY01|owner")],
    "update_access_key_active": [("grant", f"{SVC}|aws:accesskey:AKIA6ODU5DHTOLDKEY01|owner")],
    "create_user": [
        ("grant", f"aws:user:arn:aws:iam::{ACCT}:user/people/erin@acme.example|aws:account:{ACCT}|member"),
        ("status:active", f"aws:user:arn:aws:iam::{ACCT}:user/people/erin@acme.example"),
    ],
    "delete_user": [
        ("revoke", f"aws:user:arn:aws:iam::{ACCT}:user/erin@acme.example|aws:account:{ACCT}|member"),
        ("status:deleted", f"aws:user:arn:aws:iam::{ACCT}:user/erin@acme.example"),
    ],
    "access_denied_attach": [],
    "not_iam_put_object": [],
    "eventbridge_attach_role_policy": [
        (
            "grant",
            f"aws:role:arn:aws:iam::{ACCT}:role/reporting|aws:policy:arn:aws:iam::aws:policy/AWSBillingReadOnlyAccess|attached",
        )
    ],
    "s3_delivery_records": [
        (
            "grant",
            f"aws:user:arn:aws:iam::{ACCT}:user/frank@acme.example|aws:group:arn:aws:iam::{ACCT}:group/Auditors|member",
        ),
        (
            "revoke",
            f"aws:user:arn:aws:iam::{ACCT}:user/grace@acme.example|aws:group:arn:aws:iam::{ACCT}:group/Auditors|member",
        ),
    ],
}


@pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED.items()))
def test_each_api_call_yields_the_right_entitlements(name: str, expected: list[tuple[str, str]]) -> None:
    assert summary(Runner("cloudtrail").events(fixture("cloudtrail", name))) == expected


def test_attach_carries_time_actor_and_vendor_ids() -> None:
    (event,) = Runner("cloudtrail").events(fixture("cloudtrail", "attach_user_policy"))
    assert isinstance(event, GrantEvent)
    assert event.occurred_at == datetime(2024, 10, 15, 8, 28, 1, tzinfo=UTC)
    assert event.source_system == "aws"
    assert event.source == f"aws://{ACCT}"
    assert event.vendor_event_type == "AttachUserPolicy"
    assert event.principal_kind is IdentityKind.SERVICE_ACCOUNT  # "svc-" name pattern
    assert event.actor is not None
    assert event.actor.id == f"arn:aws:iam::{ACCT}:user/carol.admin@acme.example"
    assert event.actor.kind is IdentityKind.HUMAN
    assert event.actor.is_automation is False


def test_a_user_event_links_the_user_arn_to_its_user_name_and_email() -> None:
    """The identity graph learns that `frank@acme.example` (the IAM user name, an email) is this user."""
    grant, _ = Runner("cloudtrail").events(fixture("cloudtrail", "s3_delivery_records"))
    assert isinstance(grant, GrantEvent)
    assert set(grant.principal_aliases) == {"aws:user:frank@acme.example", "email:frank@acme.example"}


def test_ci_role_assumed_through_oidc_is_an_automation_actor() -> None:
    (event,) = Runner("cloudtrail").events(fixture("cloudtrail", "attach_role_policy"))
    assert event.actor is not None
    assert event.actor.is_automation is True
    assert event.actor.kind is IdentityKind.WORKLOAD


def test_access_key_events_carry_credential_facts() -> None:
    runner = Runner("cloudtrail")
    (created,) = runner.events(fixture("cloudtrail", "create_access_key"))
    (deleted,) = runner.events(fixture("cloudtrail", "delete_access_key"))
    (inactive,) = runner.events(fixture("cloudtrail", "update_access_key_inactive"))
    assert isinstance(created, GrantEvent)
    assert created.credential is not None
    assert created.credential.credential_id == "AKIA6ODU5DHTNEWKEY01"
    assert created.credential.credential_type == "aws_access_key"
    # createDate comes as "Oct 15, 2024 8:28:01 AM", not ISO 8601
    assert created.credential.created_at == datetime(2024, 10, 15, 8, 28, 1, tzinfo=UTC)
    assert isinstance(deleted, GrantEvent)
    assert deleted.credential is not None
    assert deleted.credential.status == "deleted"
    assert isinstance(inactive, GrantEvent)
    assert inactive.credential is not None
    assert inactive.credential.status == "inactive"


def test_inline_policy_keeps_a_summary_of_its_actions() -> None:
    (event,) = Runner("cloudtrail").events(fixture("cloudtrail", "put_user_policy"))
    assert isinstance(event, GrantEvent)
    assert event.details["policy_actions"] == "Allow:s3:GetObject,Allow:s3:ListBucket"


def test_trust_policy_changes_grant_added_and_revoke_dropped_principals() -> None:
    runner = Runner("cloudtrail")
    created = summary(runner.fixture_events("create_role"))
    assert created == [
        ("grant", f"aws:role:arn:aws:iam::{ACCT}:role/ops-breakglass|{ROLE}|assume"),
        ("grant", f"aws:service:ec2.amazonaws.com|{ROLE}|assume"),
    ]
    updated = summary(runner.fixture_events("update_assume_role_policy"))
    assert updated == [
        ("grant", f"aws:account:444455556666|{ROLE}|assume"),
        ("revoke", f"aws:role:arn:aws:iam::{ACCT}:role/ops-breakglass|{ROLE}|assume"),
    ]
    deleted = summary(runner.fixture_events("delete_role"))
    assert deleted == [
        ("revoke", f"aws:account:444455556666|{ROLE}|assume"),
        ("revoke", f"aws:service:ec2.amazonaws.com|{ROLE}|assume"),
        ("status:deleted", ROLE),
    ]


def test_trust_update_without_cached_policy_grants_every_principal() -> None:
    assert summary(Runner("cloudtrail").fixture_events("update_assume_role_policy")) == [
        ("grant", f"aws:account:444455556666|{ROLE}|assume"),
        ("grant", f"aws:service:ec2.amazonaws.com|{ROLE}|assume"),
    ]


def test_call_with_error_code_is_not_a_grant() -> None:
    (result,) = Runner("cloudtrail").results(fixture("cloudtrail", "access_denied_attach"))
    assert result.skipped == "failed_operation"


def test_missing_target_is_malformed() -> None:
    with pytest.raises(MalformedRecord, match="userName, roleName or groupName"):
        Runner("cloudtrail").events(fixture("cloudtrail", "missing_user_name_attach"))


def test_record_without_event_name_is_malformed() -> None:
    with pytest.raises(MalformedRecord):
        cloudtrail.normalize({"eventSource": "iam.amazonaws.com"})


def test_partition_and_account_come_from_the_record() -> None:
    record = fixture("cloudtrail", "attach_group_policy")
    record["userIdentity"]["arn"] = "arn:aws-cn:iam::210987654321:user/ops"
    record["recipientAccountId"] = "210987654321"
    (event,) = cloudtrail.parse(record, context())
    assert isinstance(event, GrantEvent)
    assert event.key.principal == "aws:group:arn:aws-cn:iam::210987654321:group/Developers"
