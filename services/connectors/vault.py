"""HashiCorp Vault audit device lines into grant / revoke events, read from the request path.

Each request is logged twice (a `request` line and a `response` line sharing `request.id`); only the
response line is used, since it carries the outcome (`error` on failure). String values in the line are
HMAC'd (`hmac-sha256:...`) unless the mount is tuned with `audit_non_hmac_request_keys`, so the path is
usually the only readable detail: policy attachments (the `policies` / `token_policies` /
`member_entity_ids` fields) become grants only where those keys are left readable, and are otherwise
counted as skipped (`hmac_values`).

Handled, by path: ACL policy writes / deletes (`sys/policies/acl/<name>`, `sys/policy/<name>`:
`vault:policy:<name>` `defined`); auth role, user and group writes / deletes (`auth/<mount>/role|users|groups/<name>`,
their attached policies `vault:policy:<p>` `attached`, diffed against the cached previous list); identity
entity and group writes (`identity/entity|group/...`: policies, and group `member` entities); token
creation (`auth/token/create*`: `vault:token:<accessor>` on `vault:auth:token` `token`) and revocation
(`revoke`, `revoke-accessor`, `revoke-self`, `revoke-orphan`); lease issue (`<mount>/creds/<role>` reads)
and revocation (`sys/leases/revoke*`, `sys/revoke*`: `vault:lease:<id>` on `vault:secretsrole:<path>` `lease`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from closeloop.contracts.grants import CredentialFact, GrantAction
from closeloop.contracts.identity import IdentityKind
from connectors.errors import MalformedRecord
from connectors.model import (
    ConnectorEvent,
    ParseContext,
    ParseResult,
    RecordEvents,
    RecordIdentity,
    StateEntry,
    event_time,
)
from connectors.timestamps import expires_after
from connectors.vendor_json import JsonObject, content_id, dig, items, mapping, require_object, text

SOURCE = "vault"
SYSTEM = "vault"
HMAC_PREFIX = "hmac-sha256:"
WRITE_OPS = {"create", "update"}
TOKEN_RESOURCE = "vault:auth:token"  # noqa: S105 - a resource name, not a credential

_POLICY = re.compile(r"^sys/(?:policies/acl|policy)/(?P<name>[^/]+)$")
_AUTH_ENTITY = re.compile(r"^auth/(?P<mount>.+)/(?P<kind>role|users|groups)/(?P<name>[^/]+)$")
_IDENTITY = re.compile(r"^identity/(?P<kind>entity|group)(?:/(?P<by>id|name)/(?P<ref>[^/]+))?$")
_TOKEN_CREATE = re.compile(r"^auth/token/create(?:-orphan)?(?:/[^/]+)?$")
_TOKEN_REVOKE = re.compile(r"^auth/token/(?P<how>revoke|revoke-orphan|revoke-accessor|revoke-self)(?:/(?P<arg>.+))?$")
_LEASE_REVOKE = re.compile(r"^sys/(?:leases/)?(?P<how>revoke|revoke-prefix|revoke-force)(?:/(?P<arg>.+))?$")
_CREDS = re.compile(r"^(?P<role>.+/creds/[^/]+)$")

HUMAN_AUTH = ("oidc", "userpass", "ldap", "okta", "github", "saml", "radius")
MACHINE_AUTH = ("approle", "kubernetes", "aws", "gcp", "azure", "cert", "jwt", "alicloud", "oci", "cf")


def unwrap(body: Any) -> list[Any]:
    return body if isinstance(body, list) else [body]


def normalize(record: Any) -> JsonObject:
    line = require_object(record, "Vault audit line")
    if text(line.get("type")) not in ("request", "response") or not text(dig(line, "request", "path")):
        raise MalformedRecord("Vault audit line without type request/response and request.path")
    return line


def _path(line: JsonObject) -> str:
    return (text(dig(line, "request", "path")) or "").strip("/")


def _namespace(line: JsonObject) -> str:
    """Vault Enterprise namespaces isolate paths: cached lists are kept per namespace."""
    return text(dig(line, "request", "namespace", "id")) or "root"


def identify(line: JsonObject) -> RecordIdentity:
    vendor_id = text(dig(line, "request", "id")) or content_id(line)
    return RecordIdentity(vendor_id, f"{text(dig(line, 'request', 'operation')) or '?'} {_path(line)}")


def is_hmac(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(HMAC_PREFIX)


def _names(value: Any) -> list[str] | None:
    """A policy / member list as Vault accepts it (list or comma-separated); None if absent."""
    if value is None:
        return None
    raw = [value] if isinstance(value, str) else items(value)
    names: list[str] = []
    for entry in raw:
        if isinstance(entry, str):
            names += [part.strip() for part in entry.split(",") if part.strip()]
    return names


def _principal_for_auth(mount: str, kind: str, name: str, mount_type: str | None) -> tuple[str, IdentityKind]:
    if kind == "role":
        if (mount_type or "").lower() == "approle" or mount.split("/")[-1] == "approle":
            return f"vault:approle:{name}", IdentityKind.APPLICATION
        return f"vault:role:{mount}/{name}", IdentityKind.WORKLOAD
    if kind == "users":
        return f"vault:user:{mount}/{name}", IdentityKind.HUMAN
    return f"vault:authgroup:{mount}/{name}", IdentityKind.UNKNOWN


Entitlement = Callable[[str], tuple[str, str, IdentityKind]]


def _diff_list(
    line: JsonObject,
    out: RecordEvents,
    ctx: ParseContext,
    *,
    state_key: str,
    fields: tuple[str, ...],
    entitlement_of: Entitlement,
    privilege: str,
    resource_type: str,
    result: ParseResult,
) -> None:
    """Grant what a full-list write added, revoke what it dropped (against the cached list); delete revokes all.

    `entitlement_of(name)` gives (principal, resource, principal kind) for one listed name.
    """
    operation = text(dig(line, "request", "operation"))
    cached = ctx.state.get(state_key)
    newer = cached is None or cached.observed_at <= out.occurred_at
    previous = set(items(dig(cached.value, "names"))) if cached and cached.value and newer else None

    def emit(action: GrantAction, name: str) -> None:
        principal, resource, kind = entitlement_of(name)
        out.add(
            action, principal, resource, privilege, principal_kind=kind, resource_type=resource_type, resource_name=name
        )

    if operation == "delete":
        for name in sorted(previous or ()):
            emit(GrantAction.REVOKE, name)
        if newer:
            result.state_updates[state_key] = StateEntry(value=None, observed_at=out.occurred_at)
        return
    data = mapping(dig(line, "request", "data")) or {}
    raw = next((data[f] for f in fields if f in data), None)
    names = _names(raw)
    if names is None:
        return
    if any(is_hmac(n) for n in names):
        result.skipped = result.skipped or "hmac_values"
        return
    if not newer:
        return
    current = set(names)
    for name in sorted(current - (previous or set())):
        emit(GrantAction.GRANT, name)
    for name in sorted((previous or set()) - current):
        emit(GrantAction.REVOKE, name)
    result.state_updates[state_key] = StateEntry(value={"names": sorted(current)}, observed_at=out.occurred_at)


def _policy_definition(line: JsonObject, out: RecordEvents, ctx: ParseContext, match: re.Match[str]) -> ParseResult:
    operation = text(dig(line, "request", "operation"))
    ref = f"vault:policy:{match['name']}"
    action = GrantAction.REVOKE if operation == "delete" else GrantAction.GRANT
    out.add(action, ref, ref, "defined", resource_type="AclPolicy", resource_name=match["name"])
    return out.result()


def _auth_entity(line: JsonObject, out: RecordEvents, ctx: ParseContext, match: re.Match[str]) -> ParseResult:
    principal, kind = _principal_for_auth(
        match["mount"], match["kind"], match["name"], text(dig(line, "request", "mount_type"))
    )
    kind = ctx.classifier.kind(kind, match["name"])
    result = ParseResult()
    _diff_list(
        line,
        out,
        ctx,
        state_key=f"policies:{_namespace(line)}:{_path(line)}",
        fields=("token_policies", "policies"),
        entitlement_of=lambda policy: (principal, f"vault:policy:{policy}", kind),
        privilege="attached",
        resource_type="AclPolicy",
        result=result,
    )
    return _finish(out, result)


def _identity_object(line: JsonObject, out: RecordEvents, ctx: ParseContext, match: re.Match[str]) -> ParseResult:
    kind_name = match["kind"]
    object_id = match["ref"] if match["by"] == "id" else text(dig(line, "response", "data", "id"))
    name = match["ref"] if match["by"] == "name" else text(dig(line, "response", "data", "name"))
    if object_id and not is_hmac(object_id):
        ref, key_path = object_id, f"identity/{kind_name}/id/{object_id}"
    elif name and not is_hmac(name):
        ref, key_path = (f"name:{name}", f"identity/{kind_name}/name/{name}")
    else:
        return ParseResult.skip("hmac_values" if object_id or name else "identity_object_unnamed")
    principal = f"vault:{kind_name}:{ref}"
    result = ParseResult()
    _diff_list(
        line,
        out,
        ctx,
        state_key=f"policies:{_namespace(line)}:{key_path}",
        fields=("policies",),
        entitlement_of=lambda policy: (principal, f"vault:policy:{policy}", IdentityKind.UNKNOWN),
        privilege="attached",
        resource_type="AclPolicy",
        result=result,
    )
    if kind_name == "group":
        _diff_list(
            line,
            out,
            ctx,
            state_key=f"members:{_namespace(line)}:{key_path}",
            fields=("member_entity_ids",),
            entitlement_of=lambda entity: (f"vault:entity:{entity}", principal, IdentityKind.UNKNOWN),
            privilege="member",
            resource_type="IdentityGroup",
            result=result,
        )
    return _finish(out, result)


def _finish(out: RecordEvents, result: ParseResult) -> ParseResult:
    result.events = out.events
    if result.events:
        result.skipped = None
    elif not result.skipped:
        result.skipped = "no_policy_change"
    return result


def _token_created(line: JsonObject, out: RecordEvents, ctx: ParseContext, match: re.Match[str]) -> ParseResult:
    auth = mapping(dig(line, "response", "auth")) or {}
    accessor = text(auth.get("accessor"))
    if not accessor:
        raise MalformedRecord("token creation response without auth.accessor")
    policies = sorted(set(_names(auth.get("policies")) or []) | set(_names(auth.get("token_policies")) or []))
    ttl = auth.get("token_ttl") or auth.get("lease_duration")
    expires_at = expires_after(out.occurred_at, ttl)
    entity = text(auth.get("entity_id"))
    details = {"policies": ",".join(policies)} if policies else {}
    if entity:
        details["entity_id"] = entity
    out.grant(
        f"vault:token:{accessor}",
        TOKEN_RESOURCE,
        "token",
        principal_kind=IdentityKind.API_TOKEN,
        principal_aliases=[f"vault:entity:{entity}"] if entity else [],
        resource_type="Token",
        resource_name=text(auth.get("display_name")),
        expires_at=expires_at,
        credential=CredentialFact(
            credential_id=accessor[:300], credential_type="vault_token", created_at=out.occurred_at
        ),
        details=details,
    )
    result = out.result()
    client_token = text(auth.get("client_token"))
    if client_token:
        result.state_updates[f"token:{client_token}"] = StateEntry(
            value={"accessor": accessor}, observed_at=out.occurred_at
        )
    return result


def _revoked_token_accessor(line: JsonObject, ctx: ParseContext, match: re.Match[str]) -> str | None:
    how, arg = match["how"], match["arg"]
    data = mapping(dig(line, "request", "data")) or {}
    if how == "revoke-self":
        return text(dig(line, "auth", "accessor"))
    if how == "revoke-accessor":
        return arg or text(data.get("accessor"))
    token = arg or text(data.get("token"))
    cached = ctx.state.get(f"token:{token}") if token else None
    return text(dig(cached.value, "accessor")) if cached and cached.value else None


def _token_revoked(line: JsonObject, out: RecordEvents, ctx: ParseContext, match: re.Match[str]) -> ParseResult:
    accessor = _revoked_token_accessor(line, ctx, match)
    if not accessor:
        return ParseResult.skip("token_not_cached")
    out.revoke(
        f"vault:token:{accessor}",
        TOKEN_RESOURCE,
        "token",
        principal_kind=IdentityKind.API_TOKEN,
        resource_type="Token",
        credential=CredentialFact(credential_id=accessor[:300], credential_type="vault_token", status="deleted"),
        details={"revoked_with": match["how"]},
    )
    return out.result()


def _lease_role(lease_id: str) -> str:
    return lease_id.rsplit("/", 1)[0] if "/" in lease_id else lease_id


def _lease_revoked(line: JsonObject, out: RecordEvents, ctx: ParseContext, match: re.Match[str]) -> ParseResult:
    data = mapping(dig(line, "request", "data")) or {}
    target = match["arg"] or text(data.get("lease_id")) or text(data.get("prefix"))
    if not target:
        raise MalformedRecord(f"{_path(line)} names no lease")
    if is_hmac(target):
        return ParseResult.skip("hmac_values")
    prefix = match["how"] != "revoke"
    out.revoke(
        f"vault:lease:{target}{'*' if prefix else ''}",
        f"vault:secretsrole:{target.rstrip('/') if prefix else _lease_role(target)}",
        "lease",
        principal_kind=IdentityKind.WORKLOAD,
        resource_type="Lease",
        credential=None
        if prefix
        else CredentialFact(credential_id=target[:300], credential_type="vault_lease", status="deleted"),
        details={"revoked_with": match["how"]},
    )
    return out.result()


def _lease_issued(line: JsonObject, out: RecordEvents, ctx: ParseContext, match: re.Match[str]) -> ParseResult:
    lease_id = text(dig(line, "response", "secret", "lease_id"))
    if not lease_id or is_hmac(lease_id):
        return ParseResult.skip("not_a_grant_event")
    duration = dig(line, "response", "secret", "lease_duration") or dig(line, "response", "lease_duration")
    expires_at = expires_after(out.occurred_at, duration)
    out.grant(
        f"vault:lease:{lease_id}",
        f"vault:secretsrole:{match['role']}",
        "lease",
        principal_kind=IdentityKind.WORKLOAD,
        resource_type="Lease",
        expires_at=expires_at,
        credential=CredentialFact(
            credential_id=lease_id[:300], credential_type="vault_lease", created_at=out.occurred_at
        ),
    )
    return out.result()


def state_keys(line: JsonObject, ctx: ParseContext) -> list[str]:
    if text(line.get("type")) != "response" or line.get("error"):
        return []
    path = _path(line)
    if _AUTH_ENTITY.match(path):
        return [f"policies:{_namespace(line)}:{path}"]
    identity = _IDENTITY.match(path)
    if identity:
        object_id = identity["ref"] if identity["by"] == "id" else text(dig(line, "response", "data", "id"))
        name = identity["ref"] if identity["by"] == "name" else text(dig(line, "response", "data", "name"))
        key_path = (
            f"identity/{identity['kind']}/id/{object_id}"
            if object_id and not is_hmac(object_id)
            else f"identity/{identity['kind']}/name/{name}"
        )
        return [f"policies:{_namespace(line)}:{key_path}", f"members:{_namespace(line)}:{key_path}"]
    revoke = _TOKEN_REVOKE.match(path)
    if revoke and revoke["how"] in ("revoke", "revoke-orphan"):
        token = revoke["arg"] or text(dig(line, "request", "data", "token"))
        return [f"token:{token}"] if token else []
    return []


Handler = Callable[[JsonObject, RecordEvents, ParseContext, re.Match[str]], ParseResult]


def _route(line: JsonObject) -> tuple[Handler, re.Match[str]] | None:
    path = _path(line)
    operation = text(dig(line, "request", "operation")) or ""
    writes_or_deletes = operation in WRITE_OPS or operation == "delete"
    routes: list[tuple[re.Pattern[str], Handler, bool]] = [
        (_POLICY, _policy_definition, writes_or_deletes),
        (_AUTH_ENTITY, _auth_entity, writes_or_deletes),
        (_IDENTITY, _identity_object, writes_or_deletes),
        (_TOKEN_CREATE, _token_created, operation in WRITE_OPS),
        (_TOKEN_REVOKE, _token_revoked, operation in WRITE_OPS),
        (_LEASE_REVOKE, _lease_revoked, operation in WRITE_OPS),
        (_CREDS, _lease_issued, operation == "read"),
    ]
    for pattern, handler, operation_matches in routes:
        match = pattern.match(path)
        if match and operation_matches:
            return handler, match
    return None


def _actor(line: JsonObject, ctx: ParseContext) -> Any:
    auth = mapping(line.get("auth")) or {}
    display = text(auth.get("display_name"))
    entity = text(auth.get("entity_id"))
    accessor = text(auth.get("accessor"))
    if not display and not entity and not accessor:
        return None
    method = (display or "").split("-", 1)[0].lower()
    if method in HUMAN_AUTH:
        kind, automation = IdentityKind.HUMAN, False
    elif method in MACHINE_AUTH:
        kind, automation = IdentityKind.WORKLOAD, True
    else:
        kind, automation = IdentityKind.UNKNOWN, False
    actor_id = f"vault:entity:{entity}" if entity else f"vault:token:{accessor}" if accessor else None
    return ctx.classifier.actor(
        actor_id, display, kind, text(dig(auth, "metadata", "role_name")), vendor_automation=automation
    )


def interpret(line: JsonObject, ctx: ParseContext) -> ParseResult:
    if text(line.get("type")) != "response":
        return ParseResult.skip("request_line")  # the response line carries the outcome
    route = _route(line)
    if route is None:
        return ParseResult.skip("not_a_grant_event")
    if text(line.get("error")):
        return ParseResult.skip("failed_operation")
    occurred_at, details = event_time(ctx, line.get("time"))
    namespace = text(dig(line, "request", "namespace", "path")) or text(dig(line, "request", "namespace", "id"))
    out = RecordEvents(
        source_system=SYSTEM,
        identity=identify(line),
        occurred_at=occurred_at,
        source=f"vault://{namespace.strip('/') or 'root'}" if namespace else "vault",
        actor=_actor(line, ctx),
        details=details,
    )
    handler, match = route
    return handler(line, out, ctx, match)


def parse(record: Any, ctx: ParseContext | None = None) -> list[ConnectorEvent]:
    """Pure: one audit line into zero or more events, given cached lists in `ctx.state`."""
    return interpret(normalize(record), ctx or ParseContext()).events
