"""Okta System Log events (poll API or Event Hook) into grant, revoke and principal-status events.

Targets are an ordered array whose order differs between event types, so they are selected by `type`,
never by position. A result other than SUCCESS / ALLOW means the change did not happen: not a grant.
Keys: `okta:user:<login>` / `okta:group:<id>` `member`; `okta:app:<appInstanceId>` `assigned`;
`okta:adminrole:<ROLE_TYPE>` `assigned`; API tokens `okta:apitoken:<id>` / `okta:org:<org or creator>` `token`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from closeloop.contracts.grants import CredentialFact, GrantAction, PrincipalStatus
from closeloop.contracts.identity import IdentityKind
from connectors.errors import MalformedRecord
from connectors.identity import email_alias, login
from connectors.model import (
    ConnectorEvent,
    ParseContext,
    ParseResult,
    RecordEvents,
    RecordIdentity,
    event_time,
)
from connectors.vendor_json import JsonObject, content_id, dig, mapping, objects, require_object, text

SOURCE = "okta"
SYSTEM = "okta"

# Names older orgs and older exports still carry, mapped to the current event type.
LEGACY_EVENT_TYPES = {
    "core.user_group_member.user_add": "group.user_membership.add",
    "core.user_group_member.user_remove": "group.user_membership.remove",
    "app.generic.provision.assign_user_to_app": "application.user_membership.add",
    "core.user.admin_privilege.granted": "user.account.privilege.grant",
    "core.user.admin_privilege.revoked": "user.account.privilege.revoke",
    "api.token.create": "system.api_token.create",
    "api.token.revoke": "system.api_token.revoke",
}

SUCCESS_RESULTS = {"SUCCESS", "ALLOW"}

# Admin role display names (as in debugData.privilegeGranted) to Okta's role type constants.
ADMIN_ROLE_TYPES = {
    "super administrator": "SUPER_ADMIN",
    "super admin": "SUPER_ADMIN",
    "organization administrator": "ORG_ADMIN",
    "org administrator": "ORG_ADMIN",
    "org admin": "ORG_ADMIN",
    "application administrator": "APP_ADMIN",
    "app administrator": "APP_ADMIN",
    "app admin": "APP_ADMIN",
    "group administrator": "USER_ADMIN",
    "user administrator": "USER_ADMIN",
    "help desk administrator": "HELP_DESK_ADMIN",
    "help desk admin": "HELP_DESK_ADMIN",
    "read only administrator": "READ_ONLY_ADMIN",
    "read-only administrator": "READ_ONLY_ADMIN",
    "read only admin": "READ_ONLY_ADMIN",
    "read-only admin": "READ_ONLY_ADMIN",
    "mobile administrator": "MOBILE_ADMIN",
    "report administrator": "REPORT_ADMIN",
    "api access management administrator": "API_ACCESS_MANAGEMENT_ADMIN",
    "group membership administrator": "GROUP_MEMBERSHIP_ADMIN",
}

ACTOR_KINDS = {
    "user": IdentityKind.HUMAN,
    "systemprincipal": IdentityKind.WORKLOAD,
    "publicclientapp": IdentityKind.APPLICATION,
    "appinstance": IdentityKind.APPLICATION,
    "client": IdentityKind.APPLICATION,
    "token": IdentityKind.API_TOKEN,
}

LIFECYCLE_STATUS = {
    "user.lifecycle.deactivate": PrincipalStatus.DEACTIVATED,
    "user.lifecycle.suspend": PrincipalStatus.SUSPENDED,
    "user.lifecycle.delete.initiated": PrincipalStatus.DELETED,
    "user.lifecycle.activate": PrincipalStatus.ACTIVE,
    "user.lifecycle.reactivate": PrincipalStatus.ACTIVE,
    "user.lifecycle.unsuspend": PrincipalStatus.ACTIVE,
}


def unwrap(body: Any) -> list[Any]:
    """System Log API array, Event Hook envelope (`data.events`) or a single LogEvent."""
    if isinstance(body, list):
        return body
    events = dig(body, "data", "events")
    if isinstance(events, list) and mapping(body) is not None and "eventType" in body and "data" in body:
        return events
    return [body]


def normalize(record: Any) -> JsonObject:
    event = require_object(record, "Okta log event")
    if not text(event.get("eventType")) and not text(event.get("legacyEventType")):
        raise MalformedRecord("Okta log event without eventType")
    return event


def event_type(record: JsonObject) -> str:
    current = text(record.get("eventType"))
    if current:
        return LEGACY_EVENT_TYPES.get(current, current)
    legacy = text(record.get("legacyEventType")) or "unknown"
    return LEGACY_EVENT_TYPES.get(legacy, legacy)


def identify(record: JsonObject) -> RecordIdentity:
    vendor_type = text(record.get("eventType")) or text(record.get("legacyEventType")) or "unknown"
    return RecordIdentity(text(record.get("uuid")) or content_id(record), vendor_type)


def targets(record: JsonObject, *types: str) -> list[JsonObject]:
    wanted = {t.lower() for t in types}
    return [t for t in objects(record.get("target")) if (text(t.get("type")) or "").lower() in wanted]


def _actor(record: JsonObject, ctx: ParseContext) -> Any:
    actor = mapping(record.get("actor")) or {}
    actor_type = text(actor.get("type"))
    alternate = text(actor.get("alternateId"))
    vendor_id = text(actor.get("id"))
    kind = ACTOR_KINDS.get((actor_type or "").lower(), IdentityKind.UNKNOWN)
    if actor_type and actor_type.lower() == "user" and alternate and alternate.lower() != "unknown":
        actor_id = f"okta:user:{login(alternate)}"
    elif vendor_id:
        actor_id = f"okta:{(actor_type or 'actor').lower()}:{vendor_id}"
    else:
        actor_id = None
    return ctx.classifier.actor(
        actor_id,
        text(actor.get("displayName")) or alternate,
        kind,
        alternate,
        vendor_automation=bool(actor_type) and (actor_type or "").lower() != "user",
    )


def _user(
    record: JsonObject, ctx: ParseContext, *, allow_app_user: bool = False
) -> tuple[str, IdentityKind, list[str]]:
    """The canonical Okta user a change is about, its kind and its other names."""
    candidates = targets(record, "User")
    if not candidates and allow_app_user:
        # An app-scoped user's alternateId is the app username, usable only when it is an email address.
        candidates = [t for t in targets(record, "AppUser") if "@" in (text(t.get("alternateId")) or "")]
    if not candidates:
        raise MalformedRecord(f"{event_type(record)} without a target of type User")
    user = candidates[0]
    alternate = text(user.get("alternateId"))
    vendor_id = text(user.get("id"))
    if alternate and alternate.lower() != "unknown":
        name = login(alternate)
    elif vendor_id:
        name = vendor_id
    else:
        raise MalformedRecord("User target has neither alternateId nor id")
    aliases = [f"okta:user:{vendor_id}"] if vendor_id and vendor_id != name else []
    aliases += email_alias(alternate)
    kind = ctx.classifier.kind(IdentityKind.HUMAN, alternate, text(user.get("displayName")))
    return f"okta:user:{name}", kind, aliases


def _one_target(record: JsonObject, target_type: str) -> JsonObject:
    found = targets(record, target_type)
    if not found or not text(found[0].get("id")):
        raise MalformedRecord(f"{event_type(record)} without a target of type {target_type}")
    return found[0]


def _admin_roles(record: JsonObject, granted: bool) -> list[str]:
    debug = dig(record, "debugContext", "debugData")
    names: list[str] = []
    keys = ("privilegeGranted",) if granted else ("privilegeRevoked", "privilegeGranted")
    for key in keys:
        value = text(dig(debug, key))
        if value:
            names = [part.strip() for part in value.split(",") if part.strip()]
            break
    if not names:
        names = [text(t.get("displayName")) or "" for t in targets(record, "ROLE", "CUSTOM_ROLE")]
        names = [n for n in names if n]
    if not names:
        raise MalformedRecord(f"{event_type(record)} names no admin role")
    return [ADMIN_ROLE_TYPES.get(n.lower(), "_".join(n.upper().replace("-", " ").split())) for n in names]


def _membership(record: JsonObject, out: RecordEvents, ctx: ParseContext, action: GrantAction) -> None:
    principal, kind, aliases = _user(record, ctx)
    group = _one_target(record, "UserGroup")
    out.add(
        action,
        principal,
        f"okta:group:{text(group.get('id'))}",
        "member",
        principal_kind=kind,
        principal_aliases=aliases,
        resource_type="UserGroup",
        resource_name=text(group.get("displayName")),
    )


def _app_assignment(record: JsonObject, out: RecordEvents, ctx: ParseContext, action: GrantAction) -> None:
    principal, kind, aliases = _user(record, ctx, allow_app_user=True)
    app = _one_target(record, "AppInstance")
    out.add(
        action,
        principal,
        f"okta:app:{text(app.get('id'))}",
        "assigned",
        principal_kind=kind,
        principal_aliases=aliases,
        resource_type="AppInstance",
        resource_name=text(app.get("displayName")),
    )


def _user_admin_role(record: JsonObject, out: RecordEvents, ctx: ParseContext, action: GrantAction) -> None:
    principal, kind, aliases = _user(record, ctx)
    for role in _admin_roles(record, action is GrantAction.GRANT):
        out.add(
            action,
            principal,
            f"okta:adminrole:{role}",
            "assigned",
            principal_kind=kind,
            principal_aliases=aliases,
            resource_type="AdminRole",
            resource_name=role,
        )


def _group_admin_role(record: JsonObject, out: RecordEvents, ctx: ParseContext, action: GrantAction) -> None:
    group = _one_target(record, "UserGroup")
    for role in _admin_roles(record, action is GrantAction.GRANT):
        out.add(
            action,
            f"okta:group:{text(group.get('id'))}",
            f"okta:adminrole:{role}",
            "assigned",
            principal_aliases=[f"okta:groupname:{name}"] if (name := text(group.get("displayName"))) else [],
            resource_type="AdminRole",
            resource_name=role,
        )


def _api_token(record: JsonObject, out: RecordEvents, ctx: ParseContext, action: GrantAction) -> None:
    token = _one_target(record, "Token")
    token_id = text(token.get("id")) or ""
    creator = text(dig(record, "actor", "alternateId"))
    org = ctx.okta_org or (login(creator) if creator and creator.lower() != "unknown" else None)
    if not org:
        raise MalformedRecord("API token event without an org (set okta_org) or an actor")
    created = action is GrantAction.GRANT
    out.add(
        action,
        f"okta:apitoken:{token_id}",
        f"okta:org:{org}",
        "token",
        principal_kind=IdentityKind.API_TOKEN,
        resource_type="Token",
        resource_name=text(token.get("displayName")),
        credential=CredentialFact(
            credential_id=token_id[:300],
            credential_type="okta_api_token",
            created_at=out.occurred_at if created else None,
            status="active" if created else "deleted",
        ),
        details={"token_owner": login(creator)} if created and creator else None,
    )


def _lifecycle(record: JsonObject, out: RecordEvents, ctx: ParseContext, status: PrincipalStatus) -> None:
    principal, kind, aliases = _user(record, ctx)
    out.status(principal, status, principal_kind=kind, principal_aliases=aliases)


Handler = Callable[[JsonObject, RecordEvents, ParseContext], None]


def _with(fn: Callable[[JsonObject, RecordEvents, ParseContext, Any], None], arg: Any) -> Handler:
    return lambda record, out, ctx: fn(record, out, ctx, arg)


HANDLERS: dict[str, Handler] = {
    "group.user_membership.add": _with(_membership, GrantAction.GRANT),
    "group.user_membership.remove": _with(_membership, GrantAction.REVOKE),
    "application.user_membership.add": _with(_app_assignment, GrantAction.GRANT),
    "application.user_membership.remove": _with(_app_assignment, GrantAction.REVOKE),
    "user.account.privilege.grant": _with(_user_admin_role, GrantAction.GRANT),
    "user.account.privilege.revoke": _with(_user_admin_role, GrantAction.REVOKE),
    "group.privilege.grant": _with(_group_admin_role, GrantAction.GRANT),
    "group.privilege.revoke": _with(_group_admin_role, GrantAction.REVOKE),
    "system.api_token.create": _with(_api_token, GrantAction.GRANT),
    "system.api_token.revoke": _with(_api_token, GrantAction.REVOKE),
    **{name: _with(_lifecycle, status) for name, status in LIFECYCLE_STATUS.items()},
}


def interpret(record: JsonObject, ctx: ParseContext) -> ParseResult:
    handler = HANDLERS.get(event_type(record))
    if handler is None:
        return ParseResult.skip("not_a_grant_event")
    result = text(dig(record, "outcome", "result"))
    if result and result.upper() not in SUCCESS_RESULTS:
        return ParseResult.skip("failed_operation")
    occurred_at, details = event_time(ctx, record.get("published"), record.get("eventTime"))
    out = RecordEvents(
        source_system=SYSTEM,
        identity=identify(record),
        occurred_at=occurred_at,
        source=f"okta://{ctx.okta_org}" if ctx.okta_org else "okta",
        actor=_actor(record, ctx),
        details=details,
    )
    handler(record, out, ctx)
    return out.result()


def parse(record: Any, ctx: ParseContext | None = None) -> list[ConnectorEvent]:
    """Pure: one Okta LogEvent into zero or more events (raises MalformedRecord)."""
    return interpret(normalize(record), ctx or ParseContext()).events
