"""Kubernetes audit events (raw `audit.k8s.io` Event, webhook `EventList`, AKS `properties.log`, GKE
`protoPayload`, EKS via CloudWatch Logs) into RBAC grant / revoke events.

Only `ResponseComplete` records of successful requests count. RoleBinding / ClusterRoleBinding
create / update / patch name their subjects (at level Request or RequestResponse); a delete names only
the binding, so every binding's subjects are cached (PostgreSQL, `connector_state_cache`) and read back
on delete to revoke them; an update or patch revokes the subjects it dropped. Service-account token
creation (TokenRequest, legacy token Secrets) is a credential grant; service-account create / delete are
principal status changes. Keys: `k8s:user:<name>`, `k8s:serviceaccount:<ns>/<name>`, `k8s:group:<name>`
on `k8s:clusterrole:<name>` or `k8s:role:<ns>/<name>` `bound`. Role definitions (rules) are not
entitlements and are skipped.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from closeloop.contracts.grants import CredentialFact, PrincipalStatus
from closeloop.contracts.identity import IdentityKind
from connectors.errors import MalformedRecord
from connectors.identity import looks_like_email
from connectors.model import (
    ConnectorEvent,
    ParseContext,
    ParseResult,
    RecordEvents,
    RecordIdentity,
    StateEntry,
    event_time,
)
from connectors.timestamps import first_timestamp, parse_timestamp
from connectors.vendor_json import (
    JsonObject,
    content_id,
    decode_embedded,
    dig,
    items,
    mapping,
    objects,
    require_object,
    text,
)

SOURCE = "k8s"
SYSTEM = "k8s"
BINDINGS = {"rolebindings", "clusterrolebindings"}
WRITE_VERBS = {"create", "update", "patch"}
TOKEN_SECRET_TYPE = "kubernetes.io/service-account-token"  # noqa: S105 - a Secret type name
_LEGACY_TOKEN_NAME = re.compile(r"^(?P<sa>[a-z0-9]([-a-z0-9.]*[a-z0-9])?)-token-[a-z0-9]{5}$")
_GRPC_TO_HTTP = {0: 200, 3: 400, 5: 404, 6: 409, 7: 403, 16: 401}


def unwrap(body: Any) -> list[Any]:
    """Webhook backend `EventList`, Azure diagnostic batch (`records`), CloudWatch Logs subscription,
    list, or one event."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        if body.get("kind") == "EventList" and isinstance(body.get("items"), list):
            return list(body["items"])
        if isinstance(body.get("records"), list):
            return list(body["records"])
        if isinstance(body.get("logEvents"), list):
            return [decode_embedded(dig(e, "message")) for e in body["logEvents"]]
    return [body]


def _cluster_from_resource_id(resource_id: str | None) -> str | None:
    # .../providers/Microsoft.ContainerService/managedClusters/<name>
    if resource_id and "/managedclusters/" in resource_id.lower():
        return resource_id.rstrip("/").rsplit("/", 1)[-1].lower()
    return None


def _from_gke(entry: JsonObject) -> dict[str, Any]:
    payload = mapping(entry.get("protoPayload")) or {}
    method = text(payload.get("methodName")) or ""
    parts = (text(payload.get("resourceName")) or "").split("/")
    group = parts[0] if parts and parts[0] != "core" else ""
    rest, namespace = parts[2:], None
    if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) > 2:
        namespace, rest = rest[1], rest[2:]
    request = mapping(payload.get("request")) or {}
    status_code = dig(payload, "status", "code")
    verb = method.rsplit(".", 1)[-1] if method else None
    code = _GRPC_TO_HTTP.get(status_code, 500) if isinstance(status_code, int) and status_code else None
    if code is None:
        code = 201 if verb == "create" else 200
    object_ref = {
        "resource": rest[0] if rest else None,
        "name": rest[1] if len(rest) > 1 else text(dig(request, "metadata", "name")),
        "subresource": rest[2] if len(rest) > 2 else None,
        "namespace": namespace or text(dig(request, "metadata", "namespace")),
        "apiGroup": group,
    }
    return {
        "kind": "Event",
        "auditID": text(dig(entry, "operation", "id")) or text(entry.get("insertId")),
        "stage": "ResponseComplete",
        "verb": verb,
        "user": {"username": text(dig(payload, "authenticationInfo", "principalEmail"))},
        "userAgent": text(dig(payload, "requestMetadata", "callerSuppliedUserAgent")),
        "objectRef": object_ref,
        "requestObject": payload.get("request"),
        "responseObject": payload.get("response"),
        "responseStatus": {"code": code},
        "stageTimestamp": entry.get("timestamp"),
        "_cluster": text(dig(entry, "resource", "labels", "cluster_name")),
    }


def normalize(record: Any) -> JsonObject:
    raw = require_object(record, "Kubernetes audit record")
    event: JsonObject = raw
    if mapping(raw.get("protoPayload")) is not None:
        event = _from_gke(raw)
    elif mapping(raw.get("properties")) is not None and "log" in raw["properties"]:
        log = decode_embedded(raw["properties"]["log"])
        if not isinstance(log, dict):
            raise MalformedRecord("AKS record whose properties.log is not a JSON object")
        event = {**log, "_cluster": _cluster_from_resource_id(text(raw.get("resourceId")))}
    if not text(event.get("verb")) or mapping(event.get("objectRef")) is None:
        raise MalformedRecord("Kubernetes audit event without verb or objectRef")
    return event


def _resource(event: JsonObject) -> tuple[str, str | None]:
    return (text(dig(event, "objectRef", "resource")) or "").lower(), text(dig(event, "objectRef", "subresource"))


def identify(event: JsonObject) -> RecordIdentity:
    resource, subresource = _resource(event)
    kind = f"{resource}/{subresource}" if subresource else resource
    return RecordIdentity(text(event.get("auditID")) or content_id(event), f"{text(event.get('verb'))} {kind}")


def _cluster(event: JsonObject, ctx: ParseContext) -> str:
    return text(event.get("_cluster")) or ctx.k8s_cluster


def _binding_key(event: JsonObject, ctx: ParseContext) -> str:
    resource, _ = _resource(event)
    namespace = text(dig(event, "objectRef", "namespace")) or "-"
    name = text(dig(event, "objectRef", "name")) or text(dig(event, "requestObject", "metadata", "name"))
    if not name:
        raise MalformedRecord(f"{resource} event without a name")
    return f"rbac:{_cluster(event, ctx)}/{resource}/{namespace}/{name}"


def _secret_key(event: JsonObject, ctx: ParseContext) -> str | None:
    name = text(dig(event, "objectRef", "name")) or text(dig(event, "requestObject", "metadata", "name"))
    namespace = text(dig(event, "objectRef", "namespace")) or "default"
    return f"secret:{_cluster(event, ctx)}/{namespace}/{name}" if name else None


def state_keys(event: JsonObject, ctx: ParseContext) -> list[str]:
    resource, subresource = _resource(event)
    verb = text(event.get("verb")) or ""
    try:
        if resource in BINDINGS and not subresource and (verb in WRITE_VERBS or verb == "delete"):
            return [_binding_key(event, ctx)]
        if resource == "secrets" and verb in ("create", "delete"):
            key = _secret_key(event, ctx)
            return [key] if key else []
    except MalformedRecord:
        return []
    return []


def subject_ref(subject: JsonObject, binding_namespace: str | None, ctx: ParseContext) -> tuple[str, IdentityKind]:
    kind = (text(subject.get("kind")) or "").lower()
    name = text(subject.get("name"))
    if not name:
        raise MalformedRecord("binding subject without a name")
    if kind == "serviceaccount":
        namespace = text(subject.get("namespace")) or binding_namespace
        if not namespace:
            raise MalformedRecord(f"service account subject {name} without a namespace")
        return f"k8s:serviceaccount:{namespace}/{name}", IdentityKind.SERVICE_ACCOUNT
    if kind == "group":
        return f"k8s:group:{name}", IdentityKind.UNKNOWN
    return user_ref(name, ctx)


def user_ref(username: str, ctx: ParseContext) -> tuple[str, IdentityKind]:
    """A Kubernetes username as a canonical principal (service-account usernames become service accounts)."""
    if username.startswith("system:serviceaccount:"):
        parts = username.split(":")
        if len(parts) == 4 and parts[2] and parts[3]:
            return f"k8s:serviceaccount:{parts[2]}/{parts[3]}", IdentityKind.SERVICE_ACCOUNT
    if username.startswith("system:node:"):
        return f"k8s:user:{username}", IdentityKind.WORKLOAD
    name = username.lower() if looks_like_email(username) else username
    vendor_kind = IdentityKind.WORKLOAD if username.startswith("system:") else IdentityKind.HUMAN
    return f"k8s:user:{name}", ctx.classifier.kind(vendor_kind, username)


def _role_ref(obj: JsonObject, namespace: str | None) -> str:
    kind = (text(dig(obj, "roleRef", "kind")) or "").lower()
    name = text(dig(obj, "roleRef", "name"))
    if not name:
        raise MalformedRecord("binding without roleRef.name")
    if kind == "clusterrole":
        return f"k8s:clusterrole:{name}"
    if not namespace:
        raise MalformedRecord(f"Role {name} bound outside a namespace")
    return f"k8s:role:{namespace}/{name}"


def _binding_state(event: JsonObject, previous: JsonObject | None, ctx: ParseContext) -> dict[str, Any] | None:
    """The binding as it is after this request: role and subjects, or None if the record cannot say."""
    namespace = text(dig(event, "objectRef", "namespace"))
    response = mapping(event.get("responseObject"))
    request = mapping(event.get("requestObject"))
    obj: JsonObject | None = None
    if response is not None and mapping(response.get("roleRef")) is not None:
        obj = response  # the object as stored: complete even for patches
    elif request is not None and mapping(request.get("roleRef")) is not None:
        obj = request
    if obj is not None:
        namespace = namespace or text(dig(obj, "metadata", "namespace"))
        role = _role_ref(obj, namespace)
    elif request is not None and "subjects" in request and previous is not None and previous.get("role"):
        obj, role = request, str(previous["role"])  # a patch of the subjects only; roleRef is immutable
    else:
        return None
    subjects: dict[str, str] = {}
    for subject in objects(obj.get("subjects")):
        ref, kind = subject_ref(subject, namespace, ctx)
        subjects[ref] = kind.value
    return {"role": role, "subjects": subjects}


# The cache keeps the last few incarnations of a binding name, by object uid: a binding deleted and
# re-created under the same name is a new object, and audit records of the two may arrive interleaved.
MAX_INCARNATIONS = 8
UNKNOWN_UID = "-"


def _incarnations(cached: StateEntry | None) -> dict[str, dict[str, Any]]:
    if cached is None or not cached.value:
        return {}
    found = cached.value.get("incarnations")
    return {uid: dict(inc) for uid, inc in found.items()} if isinstance(found, dict) else {}


def _seen_at(incarnation: JsonObject) -> datetime:
    return parse_timestamp(incarnation["observed_at"])


def _latest_live(incarnations: dict[str, dict[str, Any]]) -> str | None:
    live = [(uid, inc) for uid, inc in incarnations.items() if not inc.get("deleted")]
    return max(live, key=lambda item: _seen_at(item[1]))[0] if live else None


def _store(result: ParseResult, key: str, incarnations: dict[str, dict[str, Any]], cached: StateEntry | None) -> None:
    if len(incarnations) > MAX_INCARNATIONS:
        newest = sorted(incarnations.items(), key=lambda item: _seen_at(item[1]))[-MAX_INCARNATIONS:]
        incarnations = dict(newest)
    latest = max((_seen_at(inc) for inc in incarnations.values()), default=None)
    if latest is None:
        return
    if cached is not None and cached.observed_at > latest:
        latest = cached.observed_at
    result.state_updates[key] = StateEntry(value={"incarnations": incarnations}, observed_at=latest)


def _uid(event: JsonObject) -> str | None:
    return (
        text(dig(event, "responseObject", "metadata", "uid"))
        or text(dig(event, "responseObject", "details", "uid"))
        or text(dig(event, "objectRef", "uid"))
        or text(dig(event, "requestObject", "metadata", "uid"))
    )


def _revoke_all(out: RecordEvents, state: JsonObject, resource_type: str) -> None:
    role = str(state["role"])
    for ref, kind in sorted(dict(state.get("subjects") or {}).items()):
        out.revoke(
            ref,
            role,
            "bound",
            principal_kind=IdentityKind(kind),
            resource_type=resource_type,
            resource_name=role.split(":", 2)[2],
        )


def _binding(event: JsonObject, out: RecordEvents, ctx: ParseContext) -> ParseResult:
    key = _binding_key(event, ctx)
    verb = text(event.get("verb")) or ""
    resource, _ = _resource(event)
    resource_type = "ClusterRoleBinding" if resource == "clusterrolebindings" else "RoleBinding"
    out.details["binding"] = key.split("/", 1)[1]
    cached = ctx.state.get(key)
    incarnations = _incarnations(cached)
    at = out.occurred_at
    uid = _uid(event)

    if verb == "delete":
        target = uid if uid in incarnations else (None if uid else _latest_live(incarnations))
        incarnation = incarnations.get(target) if target else None
        if incarnation is None:
            result = ParseResult.skip("binding_not_cached")
            if uid:  # remember the deletion, so a late create of the same object is not taken as live
                incarnations[uid] = {"role": None, "subjects": {}, "observed_at": at.isoformat(), "deleted": True}
                _store(result, key, incarnations, cached)
            return result
        if incarnation.get("deleted") or _seen_at(incarnation) > at:
            return ParseResult.skip("binding_already_deleted" if incarnation.get("deleted") else "stale_record")
        if incarnation.get("role"):
            _revoke_all(out, incarnation, resource_type)
        result = out.result(skipped_if_empty="binding_had_no_subjects")
        incarnation.update(deleted=True, observed_at=at.isoformat())
        _store(result, key, incarnations, cached)
        return result

    target = uid or (_latest_live(incarnations) if verb != "create" else None) or UNKNOWN_UID
    previous = incarnations.get(target)
    if previous is not None and _seen_at(previous) > at:
        return ParseResult.skip("binding_already_deleted" if previous.get("deleted") else "stale_record")
    if previous is not None and previous.get("deleted"):
        previous = None  # a name re-used for a new object without a uid in the record
    state = _binding_state(event, previous, ctx)
    if state is None:
        return ParseResult.skip("binding_subjects_not_logged")  # level Metadata: subjects are not in the record
    current: dict[str, str] = state["subjects"]
    before: dict[str, str] = dict(previous["subjects"]) if previous and verb != "create" else {}
    if previous is not None and verb != "create" and previous.get("role") != state["role"]:
        _revoke_all(out, previous, resource_type)  # roleRef is immutable; a changed role means a new object
        before = {}
    role = state["role"]
    # Subjects added since the last known state are grants; subjects that disappeared are revokes.
    for emit, held, held_before in ((out.grant, current, before), (out.revoke, before, current)):
        for ref, kind in sorted(held.items()):
            if ref not in held_before:
                emit(
                    ref,
                    role,
                    "bound",
                    principal_kind=IdentityKind(kind),
                    resource_type=resource_type,
                    resource_name=role.split(":", 2)[2],
                )
    result = out.result(skipped_if_empty="binding_subjects_unchanged" if current else "binding_without_subjects")
    incarnations[target] = {"role": role, "subjects": current, "observed_at": at.isoformat(), "deleted": False}
    _store(result, key, incarnations, cached)
    return result


def _service_account(event: JsonObject, out: RecordEvents, ctx: ParseContext) -> ParseResult:
    verb = text(event.get("verb"))
    namespace = text(dig(event, "objectRef", "namespace")) or "default"
    name = text(dig(event, "objectRef", "name")) or text(dig(event, "requestObject", "metadata", "name"))
    if not name:
        raise MalformedRecord("serviceaccounts event without a name")
    status = {"create": PrincipalStatus.ACTIVE, "delete": PrincipalStatus.DELETED}.get(verb or "")
    if status is None:
        return ParseResult.skip("not_a_grant_event")
    out.status(f"k8s:serviceaccount:{namespace}/{name}", status, principal_kind=IdentityKind.SERVICE_ACCOUNT)
    return out.result()


def _token_request(event: JsonObject, out: RecordEvents, ctx: ParseContext) -> ParseResult:
    if text(event.get("verb")) != "create":
        return ParseResult.skip("not_a_grant_event")
    requester = text(dig(event, "user", "username")) or ""
    if ctx.k8s_ignored_token_requesters is not None and ctx.k8s_ignored_token_requesters.search(requester):
        return ParseResult.skip("routine_token_request")
    namespace = text(dig(event, "objectRef", "namespace")) or "default"
    name = text(dig(event, "objectRef", "name"))
    if not name:
        raise MalformedRecord("TokenRequest without a service account name")
    try:
        expires_at = first_timestamp(dig(event, "responseObject", "status", "expirationTimestamp"))
    except ValueError:
        expires_at = None
    out.grant(
        f"k8s:serviceaccount:{namespace}/{name}",
        f"k8s:tokenrequest:{namespace}/{name}",
        "token",
        principal_kind=IdentityKind.SERVICE_ACCOUNT,
        resource_type="TokenRequest",
        resource_name=f"{namespace}/{name}",
        expires_at=expires_at,
        credential=CredentialFact(
            credential_id=out.identity.vendor_event_id[:300],
            credential_type="k8s_token_request",
            created_at=out.occurred_at,
        ),
    )
    return out.result()


def _token_secret_owner(event: JsonObject) -> str | None:
    """The service account a created Secret is a token for, or None when it is another kind of Secret."""
    request = mapping(event.get("requestObject"))
    if request is not None and "type" in request:
        if text(request.get("type")) != TOKEN_SECRET_TYPE:
            return None
        return text(dig(request, "metadata", "annotations", "kubernetes.io/service-account.name"))
    # Level Metadata: the tokens controller names legacy token secrets `<service account>-token-<5 chars>`.
    name = text(dig(event, "objectRef", "name")) or ""
    match = _LEGACY_TOKEN_NAME.match(name)
    if match and "tokens-controller" in (text(event.get("userAgent")) or ""):
        return match["sa"]
    return None


def _secret(event: JsonObject, out: RecordEvents, ctx: ParseContext) -> ParseResult:
    verb = text(event.get("verb"))
    namespace = text(dig(event, "objectRef", "namespace")) or "default"
    name = text(dig(event, "objectRef", "name")) or text(dig(event, "requestObject", "metadata", "name")) or ""
    key = _secret_key(event, ctx)
    cached = ctx.state.get(key) if key else None
    resource = f"k8s:secret:{namespace}/{name}"
    if verb == "create":
        owner = _token_secret_owner(event)
        if not owner or not name:
            return ParseResult.skip("not_a_grant_event")
        principal = f"k8s:serviceaccount:{namespace}/{owner}"
        out.grant(
            principal,
            resource,
            "token",
            principal_kind=IdentityKind.SERVICE_ACCOUNT,
            resource_type="ServiceAccountTokenSecret",
            resource_name=name,
            credential=CredentialFact(
                credential_id=f"{namespace}/{name}"[:300],
                credential_type="k8s_service_account_token_secret",
                created_at=out.occurred_at,
            ),
        )
        result = out.result()
        if key:
            result.state_updates[key] = StateEntry(value={"principal": principal}, observed_at=out.occurred_at)
        return result
    if verb == "delete" and cached is not None and cached.value and cached.observed_at <= out.occurred_at:
        out.revoke(
            str(cached.value["principal"]),
            resource,
            "token",
            principal_kind=IdentityKind.SERVICE_ACCOUNT,
            resource_type="ServiceAccountTokenSecret",
            resource_name=name,
            credential=CredentialFact(
                credential_id=f"{namespace}/{name}"[:300],
                credential_type="k8s_service_account_token_secret",
                status="deleted",
            ),
        )
        result = out.result()
        if key:
            result.state_updates[key] = StateEntry(value=None, observed_at=out.occurred_at)
        return result
    return ParseResult.skip("not_a_grant_event")


def _actor(event: JsonObject, ctx: ParseContext) -> Any:
    username = text(dig(event, "user", "username"))
    if not username:
        return None
    ref, kind = user_ref(username, ctx)
    groups = [g for g in items(dig(event, "user", "groups")) if isinstance(g, str)]
    if "system:serviceaccounts" in groups and kind in (IdentityKind.HUMAN, IdentityKind.UNKNOWN):
        kind = IdentityKind.SERVICE_ACCOUNT
    return ctx.classifier.actor(ref, username, kind, text(event.get("userAgent")))


def interpret(event: JsonObject, ctx: ParseContext) -> ParseResult:
    resource, subresource = _resource(event)
    verb = text(event.get("verb")) or ""
    if resource in BINDINGS and not subresource:
        handler = _binding
    elif resource == "serviceaccounts" and subresource == "token":
        handler = _token_request
    elif resource == "serviceaccounts" and not subresource:
        handler = _service_account
    elif resource == "secrets" and not subresource:
        handler = _secret
    else:
        return ParseResult.skip("role_definition" if resource in ("roles", "clusterroles") else "not_a_grant_event")
    if verb not in WRITE_VERBS and verb != "delete":
        return ParseResult.skip("not_a_grant_event")
    stage = text(event.get("stage"))
    if stage and stage != "ResponseComplete":
        return ParseResult.skip("not_response_complete")
    code = dig(event, "responseStatus", "code")
    decision = text(dig(event, "annotations", "authorization.k8s.io/decision"))
    if (isinstance(code, int) and not 200 <= code < 300) or (decision and decision.lower() != "allow"):
        return ParseResult.skip("failed_operation")
    occurred_at, details = event_time(
        ctx,
        event.get("stageTimestamp"),
        event.get("requestReceivedTimestamp"),
        event.get("timestamp"),
        dig(event, "metadata", "creationTimestamp"),
    )
    out = RecordEvents(
        source_system=SYSTEM,
        identity=identify(event),
        occurred_at=occurred_at,
        source=f"k8s://{_cluster(event, ctx)}",
        actor=_actor(event, ctx),
        details={**details, "cluster": _cluster(event, ctx)},
    )
    return handler(event, out, ctx)


def parse(record: Any, ctx: ParseContext | None = None) -> list[ConnectorEvent]:
    """Pure: one audit event into zero or more events, given the cached binding state in `ctx.state`."""
    return interpret(normalize(record), ctx or ParseContext()).events


__all__ = ["SOURCE", "SYSTEM", "identify", "interpret", "normalize", "parse", "state_keys", "unwrap"]
