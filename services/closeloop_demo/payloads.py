"""Vendor payloads the demo sends, in the shapes ServiceNow, Okta and CloudTrail really deliver."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

SERVICENOW_INSTANCE = "https://demo.service-now.com"
OKTA_ORG = "https://demo.okta.com"
AWS_ACCOUNT = "123456789012"


def _sn_time(moment: datetime) -> str:
    # ServiceNow's Table API: UTC, no zone designator.
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def servicenow_item(
    *,
    sys_id: str,
    number: str,
    table: str,
    state: str,
    mod_count: int,
    variables: dict[str, str],
    approval: str | None = None,
    stage: str | None = None,
    short_description: str,
) -> dict[str, Any]:
    now = datetime.now(UTC)
    record: dict[str, Any] = {
        "sys_id": sys_id,
        "number": number,
        "sys_class_name": table,
        "state": state,
        "active": "false" if state in ("3", "4", "7") else "true",
        "short_description": short_description,
        "opened_at": _sn_time(now - timedelta(minutes=5)),
        "sys_created_on": _sn_time(now - timedelta(minutes=5)),
        "sys_created_by": "demo.requester",
        "sys_updated_on": _sn_time(now),
        "sys_updated_by": "demo.approver",
        "sys_mod_count": str(mod_count),
        "variables": variables,
    }
    if approval is not None:
        record["approval"] = approval
    if stage is not None:
        record["stage"] = stage
    return record


def new_sys_id() -> str:
    return uuid.uuid4().hex


def _okta_actor(login: str) -> dict[str, Any]:
    return {
        "id": "00udemoadmin000x001",
        "type": "User",
        "alternateId": login,
        "displayName": "Demo Admin",
        "detailEntry": None,
    }


def okta_hook(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The Okta event hook envelope around one or more System Log events."""
    return {
        "eventType": "com.okta.event_hook",
        "eventTypeVersion": "1.0",
        "cloudEventsVersion": "0.1",
        "source": f"{OKTA_ORG}/api/v1/eventHooks/whodemo0001",
        "eventId": str(uuid.uuid4()),
        "eventTime": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "contentType": "application/json",
        "data": {"events": events},
    }


def okta_event(event_type: str, targets: list[dict[str, Any]], legacy: str | None = None) -> dict[str, Any]:
    return {
        "uuid": str(uuid.uuid4()),
        "published": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "eventType": event_type,
        "legacyEventType": legacy,
        "version": "0",
        "severity": "INFO",
        "displayMessage": event_type,
        "actor": _okta_actor("it.admin@example.com"),
        "client": {"ipAddress": "198.51.100.10", "zone": "null"},
        "outcome": {"result": "SUCCESS", "reason": None},
        "target": targets,
        "transaction": {"type": "WEB", "id": uuid.uuid4().hex[:12], "detail": {}},
        "debugContext": {"debugData": {}},
    }


def okta_user(login: str, user_id: str) -> dict[str, Any]:
    return {
        "id": user_id,
        "type": "User",
        "alternateId": login,
        "displayName": login.split("@")[0],
        "detailEntry": None,
    }


def okta_group(group_id: str, name: str) -> dict[str, Any]:
    return {"id": group_id, "type": "UserGroup", "alternateId": "unknown", "displayName": name, "detailEntry": None}


def okta_group_membership(action: str, login: str, user_id: str, group_id: str, group_name: str) -> dict[str, Any]:
    legacy = "core.user_group_member.user_add" if action == "add" else "core.user_group_member.user_remove"
    return okta_event(
        f"group.user_membership.{action}",
        [okta_user(login, user_id), okta_group(group_id, group_name)],
        legacy=legacy,
    )


def okta_api_token_created(token_id: str, token_name: str) -> dict[str, Any]:
    token = {"id": token_id, "type": "Token", "alternateId": "unknown", "displayName": token_name, "detailEntry": None}
    return okta_event("system.api_token.create", [token], legacy="api.token.create")


def cloudtrail_attach_user_policy(user_name: str, policy_arn: str) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDADEMOADMIN0000001",
            "arn": f"arn:aws:iam::{AWS_ACCOUNT}:user/ops-contractor",
            "accountId": AWS_ACCOUNT,
            "accessKeyId": "AKIADEMOEXAMPLE00001",
            "userName": "ops-contractor",
        },
        "eventTime": now,
        "eventSource": "iam.amazonaws.com",
        "eventName": "AttachUserPolicy",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.44",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": {"userName": user_name, "policyArn": policy_arn},
        "responseElements": None,
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": AWS_ACCOUNT,
        "eventCategory": "Management",
    }
