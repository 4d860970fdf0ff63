"""Microsoft Entra ID directory audit records (Graph `directoryAudit` or Azure Monitor diagnostic export)
into grant, revoke and principal-status events.

The export nests the record under `properties` with `operationName` / `time` on top; both shapes are
flattened to the Graph one first. Which `targetResources[]` entry is the member and which is the
group or role is not fixed, so targets are selected by `type` (or `@odata.type`); `modifiedProperties`
values are JSON-encoded strings and are decoded. Keys: `entra:user:<UPN>` (object id when the record
has no UPN) or `entra:serviceprincipal:<objectId>`; `entra:group:<objectId>` `member`|`owner`;
`entra:role:<role display name>` `assigned` (`eligible` for PIM eligibility); `entra:app:<resource SP id>`
`<app role value or id>`; service principal credentials `entra:credential:<key id>` `owner`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from closeloop.contracts.grants import CredentialFact, GrantAction, PrincipalStatus
from closeloop.contracts.identity import IdentityKind
from connectors.errors import MalformedRecord
from connectors.identity import email_alias, login
from connectors.model import ConnectorEvent, ParseContext, ParseResult, RecordEvents, RecordIdentity, event_time
from connectors.timestamps import first_timestamp
from connectors.vendor_json import (
    JsonObject,
    content_id,
    decode_embedded,
    dig,
    embedded_text,
    mapping,
    objects,
    require_object,
    text,
)

SOURCE = "entra"
SYSTEM = "entra"
DEFAULT_APP_ROLE = "00000000-0000-0000-0000-000000000000"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_KEY_ENTRY = re.compile(r"KeyIdentifier=([^,\]]+)(?:,KeyType=([^,\]]+))?")


def unwrap(body: Any) -> list[Any]:
    """Graph list response (`value`), Event Hub diagnostic batch (`records`), list, or one record."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for key in ("value", "records"):
            if isinstance(body.get(key), list) and "activityDisplayName" not in body:
                return list(body[key])
    return [body]


def _activity_name(value: str) -> str:
    """Lower case, single spaces, en/em dashes as '-', so names match across portals and exports."""
    return " ".join(value.replace("\u2013", "-").replace("\u2014", "-").lower().split())


def normalize(record: Any) -> JsonObject:
    raw = require_object(record, "Entra audit record")
    properties = mapping(raw.get("properties"))
    if properties is not None and ("activityDisplayName" in properties or "operationName" in raw):
        flat: dict[str, Any] = dict(properties)
        flat["activityDisplayName"] = text(properties.get("activityDisplayName")) or text(raw.get("operationName"))
        flat["activityDateTime"] = properties.get("activityDateTime") or raw.get("time")
        flat.setdefault("correlationId", raw.get("correlationId"))
        flat["tenantId"] = raw.get("tenantId") or properties.get("tenantId")
        if not text(flat.get("result")):
            flat["result"] = raw.get("resultType") or raw.get("resultSignature")
        raw = flat
    if not text(raw.get("activityDisplayName")):
        raise MalformedRecord("Entra audit record without activityDisplayName")
    return raw


def identify(record: JsonObject) -> RecordIdentity:
    return RecordIdentity(text(record.get("id")) or content_id(record), text(record.get("activityDisplayName")) or "")


def target_type(target: JsonObject) -> str:
    declared = text(target.get("type"))
    if declared:
        return declared.lower()
    odata = (text(target.get("@odata.type")) or "").lower()
    for name in ("serviceprincipal", "user", "group", "role", "device", "application"):
        if odata.endswith(name):
            return name
    return ""


def targets(record: JsonObject, *types: str) -> list[JsonObject]:
    return [t for t in objects(record.get("targetResources")) if target_type(t) in types]


def modified(record: JsonObject, *, old: bool = False) -> dict[str, Any]:
    """Every target's modifiedProperties by name, values decoded from their JSON encoding."""
    found: dict[str, Any] = {}
    field = "oldValue" if old else "newValue"
    for target in objects(record.get("targetResources")):
        for prop in objects(target.get("modifiedProperties")):
            name = text(prop.get("displayName"))
            if name and name not in found:
                found[name] = decode_embedded(prop.get(field))
    return found


def additional(record: JsonObject, key: str) -> str | None:
    for entry in objects(record.get("additionalDetails")):
        if (text(entry.get("key")) or "").lower() == key.lower():
            return text(entry.get("value"))
    return None


def _user_ref(target: JsonObject, ctx: ParseContext) -> tuple[str, IdentityKind, list[str]]:
    upn = text(target.get("userPrincipalName"))
    object_id = text(target.get("id"))
    if upn:
        aliases = [f"entra:user:{object_id}"] if object_id else []
        kind = ctx.classifier.kind(IdentityKind.HUMAN, upn, text(target.get("displayName")))
        return f"entra:user:{login(upn)}", kind, aliases + email_alias(upn)
    if object_id:
        return f"entra:user:{object_id}", ctx.classifier.kind(IdentityKind.HUMAN, text(target.get("displayName"))), []
    raise MalformedRecord("user target without userPrincipalName or id")


def _service_principal_ref(
    target: JsonObject, record: JsonObject, ctx: ParseContext
) -> tuple[str, IdentityKind, list[str]]:
    object_id = text(target.get("id"))
    if not object_id:
        raise MalformedRecord("service principal target without id")
    aliases: list[str] = []
    names = embedded_text(modified(record).get("TargetId.ServicePrincipalNames")) or ""
    app_id = additional(record, "AppId") or next((n for n in names.split(";") if _GUID.match(n.strip())), None)
    if app_id:
        aliases.append(f"entra:appid:{app_id.strip()}")
    kind = ctx.classifier.kind(IdentityKind.APPLICATION, text(target.get("displayName")))
    return f"entra:serviceprincipal:{object_id}", kind, aliases


def _member_ref(target: JsonObject, record: JsonObject, ctx: ParseContext) -> tuple[str, IdentityKind, list[str]]:
    kind_name = target_type(target)
    if kind_name == "user":
        return _user_ref(target, ctx)
    if kind_name == "serviceprincipal":
        return _service_principal_ref(target, record, ctx)
    object_id = text(target.get("id"))
    if not object_id:
        raise MalformedRecord(f"{kind_name} target without id")
    if kind_name == "device":
        return f"entra:device:{object_id}", IdentityKind.WORKLOAD, []
    return f"entra:group:{object_id}", IdentityKind.UNKNOWN, []


def _actor(record: JsonObject, ctx: ParseContext) -> Any:
    user = mapping(dig(record, "initiatedBy", "user"))
    app = mapping(dig(record, "initiatedBy", "app"))
    if user and (text(user.get("userPrincipalName")) or text(user.get("id"))):
        upn = text(user.get("userPrincipalName"))
        actor_id = f"entra:user:{login(upn)}" if upn else f"entra:user:{text(user.get('id'))}"
        return ctx.classifier.actor(actor_id, text(user.get("displayName")) or upn, IdentityKind.HUMAN, upn)
    if app and (text(app.get("servicePrincipalId")) or text(app.get("appId")) or text(app.get("displayName"))):
        sp = text(app.get("servicePrincipalId"))
        actor_id = f"entra:serviceprincipal:{sp}" if sp else f"entra:app:{text(app.get('appId')) or 'unknown'}"
        return ctx.classifier.actor(
            actor_id, text(app.get("displayName")), IdentityKind.APPLICATION, vendor_automation=True
        )
    return None


def _group_membership(record: JsonObject, out: RecordEvents, ctx: ParseContext, spec: tuple[GrantAction, str]) -> None:
    action, privilege = spec
    props = modified(record)
    group_id = embedded_text(props.get("Group.ObjectID"))
    groups = targets(record, "group")
    if not group_id:
        if not groups:
            raise MalformedRecord(f"{record.get('activityDisplayName')} names no group")
        group_id = text(groups[0].get("id"))
    if not group_id:
        raise MalformedRecord("group target without id")
    group_name = embedded_text(props.get("Group.DisplayName")) or next(
        (text(g.get("displayName")) for g in groups if text(g.get("id")) == group_id), None
    )
    members = targets(record, "user", "serviceprincipal", "device") or [
        g for g in groups if text(g.get("id")) != group_id
    ]
    if not members:
        raise MalformedRecord(f"{record.get('activityDisplayName')} names no member")
    principal, kind, aliases = _member_ref(members[0], record, ctx)
    out.add(
        action,
        principal,
        f"entra:group:{group_id}",
        privilege,
        principal_kind=kind,
        principal_aliases=aliases,
        resource_type="Group",
        resource_name=group_name,
    )


def _role_assignment(record: JsonObject, out: RecordEvents, ctx: ParseContext, spec: tuple[GrantAction, str]) -> None:
    action, privilege = spec
    props = modified(record)
    roles = targets(record, "role")
    role_name = (
        embedded_text(props.get("Role.DisplayName"))
        or next((text(r.get("displayName")) for r in roles if text(r.get("displayName"))), None)
        or additional(record, "RoleName")
        or embedded_text(props.get("Role.TemplateId"))
        or next((text(r.get("id")) for r in roles if text(r.get("id"))), None)
    )
    if not role_name:
        raise MalformedRecord(f"{record.get('activityDisplayName')} names no role")
    members = targets(record, "user", "serviceprincipal", "group")
    if not members:
        raise MalformedRecord(f"{record.get('activityDisplayName')} names no member")
    principal, kind, aliases = _member_ref(members[0], record, ctx)
    expires_at = None
    end = additional(record, "EndTime") or additional(record, "ExpirationTime") or additional(record, "endDateTime")
    if end and action is GrantAction.GRANT:
        try:
            expires_at = first_timestamp(end)
        except ValueError:
            expires_at = None
    out.add(
        action,
        principal,
        f"entra:role:{role_name}",
        privilege,
        principal_kind=kind,
        principal_aliases=aliases,
        resource_type="DirectoryRole",
        resource_name=role_name,
        expires_at=expires_at,
        details={"logged_by": by} if (by := text(record.get("loggedByService"))) else None,
    )


def _app_role(record: JsonObject, out: RecordEvents, ctx: ParseContext, spec: tuple[GrantAction, str]) -> None:
    action, grantee_type = spec
    props = modified(record)
    role = embedded_text(props.get("AppRole.Value")) or embedded_text(props.get("AppRole.Id"))
    if not role or role == DEFAULT_APP_ROLE:
        role = "default"
    if grantee_type == "serviceprincipal":
        grantee_id = embedded_text(props.get("ServicePrincipal.ObjectID"))
        app_id = embedded_text(props.get("ServicePrincipal.AppId"))
        if not grantee_id and not app_id:
            raise MalformedRecord("app role assignment names no grantee service principal")
        principal = f"entra:serviceprincipal:{grantee_id or app_id}"
        kind = ctx.classifier.kind(IdentityKind.APPLICATION, embedded_text(props.get("ServicePrincipal.DisplayName")))
        aliases = [f"entra:appid:{app_id}"] if app_id else []
        resources = [t for t in targets(record, "serviceprincipal") if text(t.get("id")) != grantee_id]
    else:
        grantees = targets(record, grantee_type)
        if grantees:
            principal, kind, aliases = _member_ref(grantees[0], record, ctx)
        else:
            upn = embedded_text(props.get("User.UPN"))
            object_id = embedded_text(props.get(f"{grantee_type.capitalize()}.ObjectID"))
            if grantee_type == "user" and (upn or object_id):
                principal = f"entra:user:{login(upn) if upn else object_id}"
                kind = ctx.classifier.kind(IdentityKind.HUMAN, upn)
                aliases = email_alias(upn)
            elif object_id:
                principal, kind, aliases = f"entra:{grantee_type}:{object_id}", IdentityKind.UNKNOWN, []
            else:
                raise MalformedRecord(f"app role assignment names no {grantee_type}")
        resources = targets(record, "serviceprincipal")
    resource_id = (
        text(resources[0].get("id"))
        if resources
        else embedded_text(props.get("ServicePrincipal.ObjectID")) or embedded_text(props.get("AppRole.ResourceId"))
    )
    if not resource_id:
        raise MalformedRecord("app role assignment names no resource application")
    out.add(
        action,
        principal,
        f"entra:app:{resource_id}",
        role,
        principal_kind=kind,
        principal_aliases=aliases,
        resource_type="AppRoleAssignment",
        resource_name=text(resources[0].get("displayName")) if resources else None,
    )


def _key_entries(value: Any) -> dict[str, str]:
    """KeyIdentifier -> KeyType from a KeyDescription value (a list of `[KeyIdentifier=..,KeyType=..]`)."""
    decoded = decode_embedded(value)
    entries = decoded if isinstance(decoded, list) else [decoded]
    found: dict[str, str] = {}
    for entry in entries:
        for match in _KEY_ENTRY.finditer(str(entry) if entry is not None else ""):
            found[match.group(1).strip()] = (match.group(2) or "").strip()
    return found


def _credential_type(key_type: str | None) -> str:
    lowered = (key_type or "").lower()
    if "password" in lowered or "secret" in lowered:
        return "entra_client_secret"
    if "cert" in lowered or "asymmetric" in lowered:
        return "entra_certificate"
    return "entra_credential"


def _credentials(record: JsonObject, out: RecordEvents, ctx: ParseContext, action: GrantAction | None) -> None:
    """Credentials added (grant) and / or removed (revoke), from the KeyDescription before and after.

    `action` None (application "Certificates and secrets management" updates) reports both directions.
    A credential added in the same change that removed another is a rotation: its fact says so.
    """
    owners = targets(record, "serviceprincipal", "application")
    if not owners:
        raise MalformedRecord(f"{record.get('activityDisplayName')} names no service principal or application")
    owner = owners[0]
    if target_type(owner) == "serviceprincipal":
        principal, kind, aliases = _service_principal_ref(owner, record, ctx)
    else:
        owner_id = text(owner.get("id"))
        if not owner_id:
            raise MalformedRecord("application target without id")
        principal, kind, aliases = f"entra:application:{owner_id}", IdentityKind.APPLICATION, []
    new_raw, old_raw = modified(record).get("KeyDescription"), modified(record, old=True).get("KeyDescription")
    new_keys, old_keys = _key_entries(new_raw), _key_entries(old_raw)
    added = {k: v for k, v in new_keys.items() if k not in old_keys} if action is not GrantAction.REVOKE else {}
    removed = {k: v for k, v in old_keys.items() if k not in new_keys} if action is not GrantAction.GRANT else {}
    if not added and not removed:
        if action is None:
            raise MalformedRecord(f"{record.get('activityDisplayName')} changes no credential")
        # Some records describe the credential only by name (and KeyType separately).
        granted = action is GrantAction.GRANT
        description = embedded_text(new_raw if granted else old_raw) or embedded_text(new_raw)
        key_type = embedded_text(modified(record).get("KeyType"))
        identifier = description or text(record.get("correlationId"))
        if not identifier:
            raise MalformedRecord(f"{record.get('activityDisplayName')} identifies no credential")
        (added if granted else removed)[identifier[:300]] = key_type or ""
    rotation = bool(added) and bool(removed)
    for changes, granted in ((added, True), (removed, False)):
        for key_id, key_type in sorted(changes.items()):
            out.add(
                GrantAction.GRANT if granted else GrantAction.REVOKE,
                principal,
                f"entra:credential:{key_id}",
                "owner",
                principal_kind=kind,
                principal_aliases=aliases,
                resource_type="ServicePrincipalCredential",
                resource_name=text(owner.get("displayName")),
                credential=CredentialFact(
                    credential_id=key_id[:300],
                    credential_type=_credential_type(key_type),
                    created_at=out.occurred_at if granted else None,
                    rotated_at=out.occurred_at if granted and rotation else None,
                    status="active" if granted else "deleted",
                ),
            )


def _account_status(record: JsonObject, out: RecordEvents, ctx: ParseContext, status: PrincipalStatus) -> None:
    users = targets(record, "user")
    if not users:
        raise MalformedRecord(f"{record.get('activityDisplayName')} names no user")
    principal, kind, aliases = _user_ref(users[0], ctx)
    out.status(principal, status, principal_kind=kind, principal_aliases=aliases)


Handler = Callable[[JsonObject, RecordEvents, ParseContext, Any], None]

_G, _R = GrantAction.GRANT, GrantAction.REVOKE
EXACT: dict[str, tuple[Handler, Any]] = {
    "add member to group": (_group_membership, (_G, "member")),
    "remove member from group": (_group_membership, (_R, "member")),
    "add owner to group": (_group_membership, (_G, "owner")),
    "remove owner from group": (_group_membership, (_R, "owner")),
    "add app role assignment to service principal": (_app_role, (_G, "serviceprincipal")),
    "remove app role assignment from service principal": (_app_role, (_R, "serviceprincipal")),
    "add app role assignment grant to user": (_app_role, (_G, "user")),
    "remove app role assignment from user": (_app_role, (_R, "user")),
    "add app role assignment to group": (_app_role, (_G, "group")),
    "remove app role assignment from group": (_app_role, (_R, "group")),
    "add service principal credentials": (_credentials, _G),
    "remove service principal credentials": (_credentials, _R),
    "update application - certificates and secrets management": (_credentials, None),
    "disable account": (_account_status, PrincipalStatus.DEACTIVATED),
    "delete user": (_account_status, PrincipalStatus.DELETED),
    "hard delete user": (_account_status, PrincipalStatus.DELETED),
    "enable account": (_account_status, PrincipalStatus.ACTIVE),
    "restore user": (_account_status, PrincipalStatus.ACTIVE),
}
# Directory role assignments, including PIM: "Add member to role", "Add eligible member to role in PIM
# completed (timebound)", "Add member to role completed (PIM activation)", "Remove member from role (PIM
# activation expired)". Requests and approvals that did not complete yet are not grants.
_ROLE_ACTIVITY = re.compile(r"^(add|remove) (eligible )?(scoped )?member (to|from) role\b(?P<rest>.*)$")


def _handler_for(activity: str) -> tuple[Handler, Any] | None:
    name = _activity_name(activity)
    if name in EXACT:
        return EXACT[name]
    match = _ROLE_ACTIVITY.match(name)
    if match:
        rest = match["rest"]
        if ("request" in rest or "approv" in rest) and "completed" not in rest:
            return None
        action = _G if match.group(1) == "add" else _R
        return _role_assignment, (action, "eligible" if match.group(2) else "assigned")
    return None


def interpret(record: JsonObject, ctx: ParseContext) -> ParseResult:
    handler = _handler_for(text(record.get("activityDisplayName")) or "")
    if handler is None:
        return ParseResult.skip("not_a_grant_event")
    result = (text(record.get("result")) or "success").lower()
    if result not in ("success", "none", "0"):
        return ParseResult.skip("failed_operation")
    occurred_at, details = event_time(ctx, record.get("activityDateTime"))
    tenant = text(record.get("tenantId"))
    out = RecordEvents(
        source_system=SYSTEM,
        identity=identify(record),
        occurred_at=occurred_at,
        source=f"entra://{tenant}" if tenant else "entra",
        actor=_actor(record, ctx),
        details=details,
    )
    fn, arg = handler
    fn(record, out, ctx, arg)
    return out.result()


def parse(record: Any, ctx: ParseContext | None = None) -> list[ConnectorEvent]:
    """Pure: one Entra audit record into zero or more events (raises MalformedRecord)."""
    return interpret(normalize(record), ctx or ParseContext()).events
