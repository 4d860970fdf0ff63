"""AWS CloudTrail IAM events (plain, EventBridge `detail`, S3 `{"Records": [...]}`) into grant events.

Only `iam.amazonaws.com` calls change IAM entitlements; a call with an `errorCode` did not happen.
Keys: principals `aws:user|role|group:<ARN>`; managed policies `aws:policy:<ARN>` `attached`; inline
policies `aws:inlinepolicy:<principal ARN>/<name>` `inline`; group membership `aws:group:<ARN>` `member`;
access keys `aws:accesskey:<AccessKeyId>` `owner`; IAM users `aws:account:<id>` `member`; role trust
(who may assume a role) `aws:role:<ARN>` `assume`, with the previous trust policy from the state cache
so that a principal dropped from it is revoked.

CloudTrail names the target by `userName` / `roleName` / `groupName`; ARNs are built from the account and
partition of the record (the response's ARN is used when present, e.g. CreateUser), so IAM paths other
than `/` are not reflected in built ARNs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from closeloop.contracts.grants import CredentialFact, GrantAction, PrincipalStatus
from closeloop.contracts.identity import IdentityKind
from connectors.errors import MalformedRecord
from connectors.identity import email_alias
from connectors.model import (
    ConnectorEvent,
    ParseContext,
    ParseResult,
    RecordEvents,
    RecordIdentity,
    StateEntry,
    event_time,
)
from connectors.timestamps import first_timestamp
from connectors.vendor_json import (
    JsonObject,
    content_id,
    decode_embedded,
    dig,
    items,
    mapping,
    require_object,
    text,
)

SOURCE = "cloudtrail"
SYSTEM = "aws"
IAM_EVENT_SOURCE = "iam.amazonaws.com"
HUMAN_INVOKERS = {"signin.amazonaws.com", "console.amazonaws.com", "AWS Internal"}
_DIGITS = re.compile(r"\d+")
_INSTANCE_SESSION = re.compile(r"^i-[0-9a-f]{8,17}$")
_ASSUME_ACTIONS = re.compile(r"^(sts:\*|\*|sts:assumerole.*)$", re.IGNORECASE)


def unwrap(body: Any) -> list[Any]:
    """S3 object (`Records`), EventBridge event (`detail`), CloudWatch Logs subscription, list or one record."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        if isinstance(body.get("Records"), list):
            return list(body["Records"])
        if isinstance(body.get("logEvents"), list):
            return [decode_embedded(dig(e, "message")) for e in body["logEvents"]]
    return [body]


def normalize(record: Any) -> JsonObject:
    event = require_object(record, "CloudTrail record")
    detail = mapping(event.get("detail"))
    if detail is not None and "eventName" not in event:
        event = detail  # EventBridge: {"detail-type": "AWS API Call via CloudTrail", "detail": {...}}
    if not text(event.get("eventName")):
        raise MalformedRecord("CloudTrail record without eventName")
    return event


def identify(record: JsonObject) -> RecordIdentity:
    return RecordIdentity(text(record.get("eventID")) or content_id(record), text(record.get("eventName")) or "")


class _Arns:
    """Builds IAM ARNs in the record's partition and account."""

    def __init__(self, record: JsonObject) -> None:
        identity_arn = text(dig(record, "userIdentity", "arn")) or ""
        parts = identity_arn.split(":")
        self.partition = parts[1] if len(parts) > 4 and parts[0] == "arn" and parts[1] else "aws"
        account = (
            text(record.get("recipientAccountId"))
            or text(dig(record, "userIdentity", "accountId"))
            or (parts[4] if len(parts) > 4 else None)
        )
        if not account:
            raise MalformedRecord("CloudTrail record names no account (recipientAccountId / userIdentity.accountId)")
        self.account = account

    def of(self, kind: str, name: str) -> str:
        if name.startswith("arn:"):
            return name
        return f"arn:{self.partition}:iam::{self.account}:{kind}/{name}"


def _param(record: JsonObject, name: str) -> str | None:
    return text(dig(record, "requestParameters", name))


def _require(record: JsonObject, name: str) -> str:
    value = _param(record, name)
    if not value:
        raise MalformedRecord(f"{record.get('eventName')} without requestParameters.{name}")
    return value


def _actor(record: JsonObject, ctx: ParseContext) -> Any:
    identity = mapping(record.get("userIdentity")) or {}
    id_type = text(identity.get("type")) or ""
    arn = text(identity.get("arn"))
    invoked_by = text(identity.get("invokedBy"))
    service_invoked = bool(invoked_by) and invoked_by not in HUMAN_INVOKERS
    if id_type == "AssumedRole":
        session = arn.rsplit("/", 1)[-1] if arn else None
        issuer = text(dig(identity, "sessionContext", "sessionIssuer", "arn"))
        role_name = text(dig(identity, "sessionContext", "sessionIssuer", "userName"))
        federated = mapping(dig(identity, "sessionContext", "webIdFederationData")) or {}
        from_console = str(record.get("sessionCredentialFromConsole", "")).lower() == "true"
        if (session and _INSTANCE_SESSION.match(session)) or federated.get("federatedProvider"):
            kind, automation = IdentityKind.WORKLOAD, True
        elif from_console or (session and "@" in session):
            kind, automation = IdentityKind.HUMAN, service_invoked
        else:
            kind, automation = IdentityKind.UNKNOWN, service_invoked
        return ctx.classifier.actor(arn or issuer, session, kind, role_name, issuer, vendor_automation=automation)
    if id_type == "AWSService":
        return ctx.classifier.actor(invoked_by, invoked_by, IdentityKind.WORKLOAD, vendor_automation=True)
    name = text(identity.get("userName"))
    kind = IdentityKind.HUMAN if id_type in ("Root", "IAMUser", "FederatedUser") else IdentityKind.UNKNOWN
    if id_type == "IAMUser" and name and "@" not in name:
        kind = IdentityKind.UNKNOWN  # IAM users are often service users; the name patterns decide
    return ctx.classifier.actor(arn or text(identity.get("principalId")), name, kind, vendor_automation=service_invoked)


def _user_kind(ctx: ParseContext, name: str) -> IdentityKind:
    base = IdentityKind.HUMAN if "@" in name else IdentityKind.UNKNOWN
    return ctx.classifier.kind(base, name)


def _user_aliases(name: str) -> list[str]:
    return email_alias(name)


def _principal_for(record: JsonObject, arns: _Arns, ctx: ParseContext) -> tuple[str, IdentityKind, list[str], str]:
    """The user, role or group a policy event is about: (canonical, kind, aliases, ARN)."""
    for param, kind_name in (("userName", "user"), ("roleName", "role"), ("groupName", "group")):
        name = _param(record, param)
        if name:
            arn = arns.of(kind_name, name)
            if kind_name == "user":
                return f"aws:user:{arn}", _user_kind(ctx, name), _user_aliases(name), arn
            if kind_name == "role":
                return f"aws:role:{arn}", ctx.classifier.kind(IdentityKind.WORKLOAD, name), [], arn
            return f"aws:group:{arn}", IdentityKind.UNKNOWN, [], arn
    raise MalformedRecord(f"{record.get('eventName')} names no userName, roleName or groupName")


def _managed_policy(record: JsonObject, out: RecordEvents, ctx: ParseContext, action: GrantAction) -> None:
    arns = _Arns(record)
    principal, kind, aliases, _ = _principal_for(record, arns, ctx)
    policy_arn = _require(record, "policyArn")
    out.add(
        action,
        principal,
        f"aws:policy:{policy_arn}",
        "attached",
        principal_kind=kind,
        principal_aliases=aliases,
        resource_type="AWS::IAM::ManagedPolicy",
        resource_name=policy_arn.rsplit("/", 1)[-1],
    )


def _policy_actions(document: Any) -> str | None:
    doc = decode_embedded(document)
    statements = doc.get("Statement") if isinstance(doc, dict) else None
    if isinstance(statements, dict):
        statements = [statements]
    summary: list[str] = []
    for statement in items(statements):
        if not isinstance(statement, dict):
            continue
        actions = statement.get("Action")
        actions = [actions] if isinstance(actions, str) else items(actions)
        effect = text(statement.get("Effect")) or "Allow"
        summary += [f"{effect}:{a}" for a in actions if isinstance(a, str)]
    return ",".join(summary)[:1000] or None


def _inline_policy(record: JsonObject, out: RecordEvents, ctx: ParseContext, action: GrantAction) -> None:
    arns = _Arns(record)
    principal, kind, aliases, principal_arn = _principal_for(record, arns, ctx)
    name = _require(record, "policyName")
    actions = _policy_actions(dig(record, "requestParameters", "policyDocument"))
    out.add(
        action,
        principal,
        f"aws:inlinepolicy:{principal_arn}/{name}",
        "inline",
        principal_kind=kind,
        principal_aliases=aliases,
        resource_type="AWS::IAM::InlinePolicy",
        resource_name=name,
        details={"policy_actions": actions} if actions else None,
    )


def _group_membership(record: JsonObject, out: RecordEvents, ctx: ParseContext, action: GrantAction) -> None:
    arns = _Arns(record)
    user = _require(record, "userName")
    group = _require(record, "groupName")
    out.add(
        action,
        f"aws:user:{arns.of('user', user)}",
        f"aws:group:{arns.of('group', group)}",
        "member",
        principal_kind=_user_kind(ctx, user),
        principal_aliases=_user_aliases(user),
        resource_type="AWS::IAM::Group",
        resource_name=group,
    )


def _key_owner(record: JsonObject, arns: _Arns) -> str:
    """The user whose key it is: `userName`, or the caller itself when the parameter is omitted."""
    user = _param(record, "userName") or text(dig(record, "responseElements", "accessKey", "userName"))
    if user:
        return user
    if text(dig(record, "userIdentity", "type")) == "IAMUser" and text(dig(record, "userIdentity", "userName")):
        return str(dig(record, "userIdentity", "userName"))
    raise MalformedRecord(f"{record.get('eventName')} names no user")


def _access_key(record: JsonObject, out: RecordEvents, ctx: ParseContext, action: GrantAction) -> None:
    arns = _Arns(record)
    user = _key_owner(record, arns)
    event_name = text(record.get("eventName"))
    key_id = _param(record, "accessKeyId") or text(dig(record, "responseElements", "accessKey", "accessKeyId"))
    if not key_id:
        raise MalformedRecord(f"{event_name} without an access key id")
    created_at = None
    status = "active" if action is GrantAction.GRANT else "inactive"
    if event_name == "CreateAccessKey":
        try:
            created_at = first_timestamp(dig(record, "responseElements", "accessKey", "createDate")) or out.occurred_at
        except ValueError:
            created_at = out.occurred_at
    elif event_name == "DeleteAccessKey":
        status = "deleted"
    out.add(
        action,
        f"aws:user:{arns.of('user', user)}",
        f"aws:accesskey:{key_id}",
        "owner",
        principal_kind=_user_kind(ctx, user),
        principal_aliases=_user_aliases(user),
        resource_type="AWS::IAM::AccessKey",
        resource_name=key_id,
        credential=CredentialFact(
            credential_id=key_id[:300], credential_type="aws_access_key", created_at=created_at, status=status
        ),
    )


def _update_access_key(record: JsonObject, out: RecordEvents, ctx: ParseContext, _: Any) -> None:
    status = (_param(record, "status") or "").lower()
    if status == "active":
        _access_key(record, out, ctx, GrantAction.GRANT)
    elif status == "inactive":
        _access_key(record, out, ctx, GrantAction.REVOKE)
    else:
        raise MalformedRecord("UpdateAccessKey without status Active or Inactive")


def _user_lifecycle(record: JsonObject, out: RecordEvents, ctx: ParseContext, action: GrantAction) -> None:
    arns = _Arns(record)
    name = _param(record, "userName") or text(dig(record, "responseElements", "user", "userName"))
    if not name:
        raise MalformedRecord(f"{record.get('eventName')} without userName")
    arn = text(dig(record, "responseElements", "user", "arn")) or arns.of("user", name)
    principal = f"aws:user:{arn}"
    kind = _user_kind(ctx, name)
    aliases = _user_aliases(name)
    vendor_user_id = text(dig(record, "responseElements", "user", "userId"))
    if vendor_user_id:
        aliases.append(f"aws:userid:{vendor_user_id}")
    out.add(
        action,
        principal,
        f"aws:account:{arns.account}",
        "member",
        principal_kind=kind,
        principal_aliases=aliases,
        resource_type="AWS::IAM::User",
        resource_name=name,
    )
    created = action is GrantAction.GRANT
    out.status(
        principal,
        PrincipalStatus.ACTIVE if created else PrincipalStatus.DELETED,
        principal_kind=kind,
        principal_aliases=aliases,
    )


# --- role trust policies (who may assume a role) -------------------------------------------------------


def trust_principals(document: Any) -> dict[str, str]:
    """Canonical principals an Allow statement lets assume the role, mapped to their identity kind."""
    doc = decode_embedded(document)
    if not isinstance(doc, dict):
        raise MalformedRecord("trust policy document is not a JSON object")
    statements = doc.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    found: dict[str, str] = {}
    for statement in items(statements):
        if not isinstance(statement, dict) or (text(statement.get("Effect")) or "").lower() != "allow":
            continue
        actions = statement.get("Action")
        actions = [actions] if isinstance(actions, str) else items(actions)
        if not any(isinstance(a, str) and _ASSUME_ACTIONS.match(a) for a in actions):
            continue
        principal = statement.get("Principal")
        if principal == "*":
            found["aws:principal:*"] = IdentityKind.UNKNOWN.value
            continue
        if not isinstance(principal, dict):
            continue
        for kind_name, values in principal.items():
            for value in [values] if isinstance(values, str) else items(values):
                if isinstance(value, str) and value.strip():
                    ref, kind = _trust_ref(kind_name, value.strip())
                    found[ref] = kind.value
    return found


def _trust_ref(kind_name: str, value: str) -> tuple[str, IdentityKind]:
    if kind_name == "Service":
        return f"aws:service:{value}", IdentityKind.WORKLOAD
    if kind_name == "Federated":
        return f"aws:federated:{value}", IdentityKind.UNKNOWN if "saml-provider" in value else IdentityKind.WORKLOAD
    if kind_name == "CanonicalUser":
        return f"aws:canonicaluser:{value}", IdentityKind.UNKNOWN
    if value == "*":
        return "aws:principal:*", IdentityKind.UNKNOWN
    if _DIGITS.fullmatch(value):
        return f"aws:account:{value}", IdentityKind.UNKNOWN
    if value.endswith(":root"):
        return f"aws:account:{value.split(':')[4]}", IdentityKind.UNKNOWN
    if ":role/" in value:
        return f"aws:role:{value}", IdentityKind.WORKLOAD
    if ":user/" in value:
        return f"aws:user:{value}", IdentityKind.UNKNOWN
    return f"aws:principal:{value}", IdentityKind.UNKNOWN


def _role_arn(record: JsonObject) -> str:
    arns = _Arns(record)
    response_arn = text(dig(record, "responseElements", "role", "arn"))
    return response_arn or arns.of("role", _require(record, "roleName"))


def _trust_key(role_arn: str) -> str:
    return f"trust:{role_arn}"


def _trust_update(record: JsonObject, out: RecordEvents, ctx: ParseContext, _: Any) -> ParseResult:
    role_arn = _role_arn(record)
    document = _param(record, "policyDocument") or _param(record, "assumeRolePolicyDocument")
    if document is None:
        document = dig(record, "requestParameters", "policyDocument") or dig(
            record, "requestParameters", "assumeRolePolicyDocument"
        )
    if document is None:
        raise MalformedRecord(f"{record.get('eventName')} without a trust policy document")
    current = trust_principals(document)
    key = _trust_key(role_arn)
    cached = ctx.state.get(key)
    previous = dict(cached.value or {}) if cached and cached.value is not None else None
    newer = cached is None or cached.observed_at <= out.occurred_at
    resource = f"aws:role:{role_arn}"
    role_name = role_arn.rsplit("/", 1)[-1]
    for ref, kind in sorted(current.items()):
        if previous is None or ref not in previous or not newer:
            out.grant(
                ref,
                resource,
                "assume",
                principal_kind=IdentityKind(kind),
                resource_type="AWS::IAM::Role",
                resource_name=role_name,
            )
    if previous is not None and newer:
        for ref, kind in sorted(previous.items()):
            if ref not in current:
                out.revoke(
                    ref,
                    resource,
                    "assume",
                    principal_kind=IdentityKind(kind),
                    resource_type="AWS::IAM::Role",
                    resource_name=role_name,
                )
    result = out.result(skipped_if_empty="trust_unchanged")
    if newer:
        result.state_updates[key] = StateEntry(value=current, observed_at=out.occurred_at)
    return result


def _role_deleted(record: JsonObject, out: RecordEvents, ctx: ParseContext, _: Any) -> ParseResult:
    role_arn = _role_arn(record)
    key = _trust_key(role_arn)
    cached = ctx.state.get(key)
    resource = f"aws:role:{role_arn}"
    if cached and cached.value and cached.observed_at <= out.occurred_at:
        for ref, kind in sorted(cached.value.items()):
            out.revoke(
                ref,
                resource,
                "assume",
                principal_kind=IdentityKind(kind),
                resource_type="AWS::IAM::Role",
                resource_name=role_arn.rsplit("/", 1)[-1],
            )
    out.status(resource, PrincipalStatus.DELETED, principal_kind=IdentityKind.WORKLOAD)
    result = out.result()
    if cached is None or cached.observed_at <= out.occurred_at:
        result.state_updates[key] = StateEntry(value=None, observed_at=out.occurred_at)
    return result


def state_keys(record: JsonObject, ctx: ParseContext) -> list[str]:
    if text(record.get("eventName")) in TRUST_HANDLERS and not record.get("errorCode"):
        try:
            return [_trust_key(_role_arn(record))]
        except MalformedRecord:
            return []
    return []


Handler = Callable[[JsonObject, RecordEvents, ParseContext, Any], None]

HANDLERS: dict[str, tuple[Handler, Any]] = {
    "AttachUserPolicy": (_managed_policy, GrantAction.GRANT),
    "AttachRolePolicy": (_managed_policy, GrantAction.GRANT),
    "AttachGroupPolicy": (_managed_policy, GrantAction.GRANT),
    "DetachUserPolicy": (_managed_policy, GrantAction.REVOKE),
    "DetachRolePolicy": (_managed_policy, GrantAction.REVOKE),
    "DetachGroupPolicy": (_managed_policy, GrantAction.REVOKE),
    "PutUserPolicy": (_inline_policy, GrantAction.GRANT),
    "PutRolePolicy": (_inline_policy, GrantAction.GRANT),
    "PutGroupPolicy": (_inline_policy, GrantAction.GRANT),
    "DeleteUserPolicy": (_inline_policy, GrantAction.REVOKE),
    "DeleteRolePolicy": (_inline_policy, GrantAction.REVOKE),
    "DeleteGroupPolicy": (_inline_policy, GrantAction.REVOKE),
    "AddUserToGroup": (_group_membership, GrantAction.GRANT),
    "RemoveUserFromGroup": (_group_membership, GrantAction.REVOKE),
    "CreateAccessKey": (_access_key, GrantAction.GRANT),
    "DeleteAccessKey": (_access_key, GrantAction.REVOKE),
    "UpdateAccessKey": (_update_access_key, None),
    "CreateUser": (_user_lifecycle, GrantAction.GRANT),
    "DeleteUser": (_user_lifecycle, GrantAction.REVOKE),
}
TRUST_HANDLERS: dict[str, Callable[[JsonObject, RecordEvents, ParseContext, Any], ParseResult]] = {
    "UpdateAssumeRolePolicy": _trust_update,
    "CreateRole": _trust_update,
    "DeleteRole": _role_deleted,
}


def interpret(record: JsonObject, ctx: ParseContext) -> ParseResult:
    name = text(record.get("eventName")) or ""
    event_source = text(record.get("eventSource"))
    if event_source and event_source != IAM_EVENT_SOURCE:
        return ParseResult.skip("not_iam")
    if name not in HANDLERS and name not in TRUST_HANDLERS:
        return ParseResult.skip("not_a_grant_event")
    if text(record.get("errorCode")):
        return ParseResult.skip("failed_operation")
    occurred_at, details = event_time(ctx, record.get("eventTime"))
    account = text(record.get("recipientAccountId")) or text(dig(record, "userIdentity", "accountId"))
    out = RecordEvents(
        source_system=SYSTEM,
        identity=identify(record),
        occurred_at=occurred_at,
        source=f"aws://{account}" if account else "aws",
        actor=_actor(record, ctx),
        details=details,
    )
    if name in TRUST_HANDLERS:
        return TRUST_HANDLERS[name](record, out, ctx, None)
    handler, arg = HANDLERS[name]
    handler(record, out, ctx, arg)
    return out.result()


def parse(record: Any, ctx: ParseContext | None = None) -> list[ConnectorEvent]:
    """Pure: one CloudTrail record into zero or more events (raises MalformedRecord)."""
    return interpret(normalize(record), ctx or ParseContext()).events


__all__ = ["SOURCE", "SYSTEM", "identify", "interpret", "normalize", "parse", "state_keys", "unwrap"]
