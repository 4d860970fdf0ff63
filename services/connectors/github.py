"""GitHub organization / enterprise audit log entries (legacy org API and streamed shapes) into grant events.

Times are epoch milliseconds (`@timestamp`, `created_at`); the legacy shape has no `_document_id`, so its
id is the hash of the entry. Keys (logins, orgs, repos and team slugs lower-cased):
`github:user:<login>` on `github:org:<org>` `member`|`admin`|`moderator`, `github:team:<org>/<slug>`
`member`|`maintainer`, `github:repo:<org>/<repo>` `read`|`triage`|`write`|`maintain`|`admin`,
`github:business:<slug>` `admin`; teams on repos (`github:team:...` as principal); fine-grained PATs
`github:pat:<id>` and GitHub Apps `github:app:<slug>` on their org (`token`, `installed`).

A removal that does not say which role or permission it removes revokes every level at that scope:
the user holds none of them afterwards, and a revoke of a level not held is a no-op downstream.
When an addition does not name a permission, GitHub's default applies (write for collaborators, read
for teams on a repository) and the event says so in `details.permission_source`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from closeloop.contracts.grants import CredentialFact, GrantAction
from closeloop.contracts.identity import IdentityKind
from connectors.errors import MalformedRecord
from connectors.identity import login
from connectors.model import ConnectorEvent, ParseContext, ParseResult, RecordEvents, RecordIdentity, event_time
from connectors.vendor_json import JsonObject, content_id, dig, require_object, text

SOURCE = "github"
SYSTEM = "github"
REPO_LEVELS = ("read", "triage", "write", "maintain", "admin")
ORG_LEVELS = ("member", "admin")
PERMISSIONS = {
    "pull": "read",
    "read": "read",
    "triage": "triage",
    "push": "write",
    "write": "write",
    "maintain": "maintain",
    "admin": "admin",
}
ORG_ROLES = {"admin": "admin", "owner": "admin", "read": "member", "member": "member", "direct_member": "member"}


def unwrap(body: Any) -> list[Any]:
    """Audit-log API page (a list) or one streamed entry."""
    return body if isinstance(body, list) else [body]


def normalize(record: Any) -> JsonObject:
    entry = require_object(record, "GitHub audit entry")
    if not text(entry.get("action")):
        raise MalformedRecord("GitHub audit entry without action")
    return entry


def identify(record: JsonObject) -> RecordIdentity:
    return RecordIdentity(text(record.get("_document_id")) or content_id(record), text(record.get("action")) or "")


def _org(record: JsonObject) -> str:
    org = text(record.get("org"))
    if not org:
        for scoped in (text(record.get("repo")), text(record.get("team")), text(dig(record, "data", "team"))):
            if scoped and "/" in scoped:
                org = scoped.split("/", 1)[0]
                break
    if not org:
        raise MalformedRecord(f"{record.get('action')} names no org")
    return login(org)


def _team(record: JsonObject) -> str:
    team = text(dig(record, "data", "team")) or text(record.get("team"))
    if not team:
        raise MalformedRecord(f"{record.get('action')} names no team")
    if "/" not in team:
        team = f"{_org(record)}/{team}"
    return login(team)


def _repo(record: JsonObject) -> str:
    repo = text(record.get("repo")) or text(record.get("repository"))
    if not repo:
        raise MalformedRecord(f"{record.get('action')} names no repo")
    if "/" not in repo:
        repo = f"{_org(record)}/{repo}"
    return login(repo)


def _user(record: JsonObject, ctx: ParseContext) -> tuple[str, IdentityKind, list[str]]:
    user = text(record.get("user"))
    if not user:
        raise MalformedRecord(f"{record.get('action')} names no user")
    aliases = [f"github:userid:{uid}"] if (uid := text(record.get("user_id"))) else []
    return f"github:user:{login(user)}", ctx.classifier.kind(IdentityKind.HUMAN, user), aliases


def _permission(value: Any) -> str | None:
    name = text(value)
    return PERMISSIONS.get(name.lower()) if name else None


def _actor(record: JsonObject, ctx: ParseContext) -> Any:
    name = text(record.get("actor"))
    if not name:
        return None
    access = (text(record.get("programmatic_access_type")) or "").lower()
    if record.get("actor_is_agent") is True:
        kind = IdentityKind.AI_AGENT
    elif record.get("actor_is_bot") is True or name.lower().endswith("[bot]"):
        kind = IdentityKind.BOT
    elif "server-to-server" in access or access in ("github_app", "github app"):
        kind = IdentityKind.APPLICATION
    else:
        kind = IdentityKind.HUMAN
    return ctx.classifier.actor(f"github:user:{login(name)}", name, kind, vendor_automation=kind.is_nhi)


def _org_membership(record: JsonObject, out: RecordEvents, ctx: ParseContext, action: GrantAction) -> None:
    principal, kind, aliases = _user(record, ctx)
    resource = f"github:org:{_org(record)}"
    role = ORG_ROLES.get((text(record.get("permission")) or "").lower())
    levels = (role or "member",) if action is GrantAction.GRANT else ((role,) if role else ORG_LEVELS)
    for level in levels:
        out.add(
            action,
            principal,
            resource,
            level,
            principal_kind=kind,
            principal_aliases=aliases,
            resource_type="Organization",
            resource_name=_org(record),
        )


def _org_role_change(record: JsonObject, out: RecordEvents, ctx: ParseContext, _: Any) -> None:
    new = ORG_ROLES.get((text(record.get("permission")) or "").lower())
    if not new:
        raise MalformedRecord("org.update_member without the new role (permission)")
    old = ORG_ROLES.get((text(record.get("old_permission")) or "").lower()) or next(o for o in ORG_LEVELS if o != new)
    principal, kind, aliases = _user(record, ctx)
    resource = f"github:org:{_org(record)}"
    out.grant(principal, resource, new, principal_kind=kind, principal_aliases=aliases, resource_type="Organization")
    if old != new:
        out.revoke(
            principal, resource, old, principal_kind=kind, principal_aliases=aliases, resource_type="Organization"
        )


def _org_moderator(record: JsonObject, out: RecordEvents, ctx: ParseContext, action: GrantAction) -> None:
    principal, kind, aliases = _user(record, ctx)
    out.add(
        action,
        principal,
        f"github:org:{_org(record)}",
        "moderator",
        principal_kind=kind,
        principal_aliases=aliases,
        resource_type="Organization",
    )


def _team_membership(
    record: JsonObject, out: RecordEvents, ctx: ParseContext, spec: tuple[GrantAction, tuple[str, ...]]
) -> None:
    action, levels = spec
    principal, kind, aliases = _user(record, ctx)
    team = _team(record)
    for level in levels:
        out.add(
            action,
            principal,
            f"github:team:{team}",
            level,
            principal_kind=kind,
            principal_aliases=aliases,
            resource_type="Team",
            resource_name=team,
        )


def _repo_collaborator(record: JsonObject, out: RecordEvents, ctx: ParseContext, action: GrantAction) -> None:
    principal, kind, aliases = _user(record, ctx)
    _repo_access(record, out, action, principal, kind, aliases, default="write")


def _team_repository(record: JsonObject, out: RecordEvents, ctx: ParseContext, action: GrantAction) -> None:
    team = _team(record)
    _repo_access(record, out, action, f"github:team:{team}", IdentityKind.UNKNOWN, [], default="read")


def _repo_access(
    record: JsonObject,
    out: RecordEvents,
    action: GrantAction,
    principal: str,
    kind: IdentityKind,
    aliases: list[str],
    *,
    default: str,
) -> None:
    repo = _repo(record)
    permission = _permission(record.get("permission")) or _permission(record.get("new_repo_permission"))
    levels: tuple[str, ...]
    if action is GrantAction.GRANT:
        levels = (permission or default,)
        details = None if permission else {"permission_source": "github_default"}
    else:
        levels = (permission,) if permission else REPO_LEVELS
        details = None
    for level in levels:
        out.add(
            action,
            principal,
            f"github:repo:{repo}",
            level,
            principal_kind=kind,
            principal_aliases=aliases,
            resource_type="Repository",
            resource_name=repo,
            details=details,
        )


def _repo_permission_change(record: JsonObject, out: RecordEvents, ctx: ParseContext, team: bool) -> None:
    new = _permission(record.get("new_repo_permission")) or _permission(record.get("permission"))
    if not new:
        raise MalformedRecord(f"{record.get('action')} without the new permission")
    old = _permission(record.get("old_repo_permission")) or _permission(record.get("old_permission"))
    aliases: list[str]
    if team:
        principal, kind, aliases = f"github:team:{_team(record)}", IdentityKind.UNKNOWN, []
    else:
        principal, kind, aliases = _user(record, ctx)
    resource = f"github:repo:{_repo(record)}"
    out.grant(principal, resource, new, principal_kind=kind, principal_aliases=aliases, resource_type="Repository")
    for level in (old,) if old else tuple(level for level in REPO_LEVELS if level != new):
        if level != new:
            out.revoke(
                principal, resource, level, principal_kind=kind, principal_aliases=aliases, resource_type="Repository"
            )


def _business_admin(record: JsonObject, out: RecordEvents, ctx: ParseContext, action: GrantAction) -> None:
    business = text(record.get("business"))
    if not business:
        raise MalformedRecord(f"{record.get('action')} names no business")
    principal, kind, aliases = _user(record, ctx)
    out.add(
        action,
        principal,
        f"github:business:{login(business)}",
        "admin",
        principal_kind=kind,
        principal_aliases=aliases,
        resource_type="Enterprise",
        resource_name=business,
    )


def _fine_grained_pat(record: JsonObject, out: RecordEvents, ctx: ParseContext, action: GrantAction) -> None:
    token_id = (
        text(record.get("user_programmatic_access_id"))
        or text(record.get("token_id"))
        or text(record.get("user_programmatic_access_name"))
    )
    if not token_id:
        raise MalformedRecord(f"{record.get('action')} names no token")
    owner = text(record.get("user"))
    details = {"token_owner": login(owner)} if owner else {}
    if selection := text(record.get("repository_selection")):
        details["repository_selection"] = selection
    granted = action is GrantAction.GRANT
    out.add(
        action,
        f"github:pat:{token_id}",
        f"github:org:{_org(record)}",
        "token",
        principal_kind=IdentityKind.API_TOKEN,
        principal_aliases=[f"github:patname:{n}"] if (n := text(record.get("user_programmatic_access_name"))) else [],
        resource_type="FineGrainedPersonalAccessToken",
        resource_name=text(record.get("user_programmatic_access_name")),
        credential=CredentialFact(
            credential_id=token_id[:300],
            credential_type="github_fine_grained_pat",
            status="active" if granted else "deleted",
        ),
        details=details,
    )


def _app_installation(record: JsonObject, out: RecordEvents, ctx: ParseContext, action: GrantAction) -> None:
    app = text(record.get("integration")) or text(record.get("name"))
    if not app:
        raise MalformedRecord(f"{record.get('action')} names no GitHub App (integration)")
    details = {"repository_selection": s} if (s := text(record.get("repository_selection"))) else None
    out.add(
        action,
        f"github:app:{login(app)}",
        f"github:org:{_org(record)}",
        "installed",
        principal_kind=ctx.classifier.kind(IdentityKind.APPLICATION, app),
        principal_aliases=[f"github:appclient:{c}"] if (c := text(record.get("application_client_id"))) else [],
        resource_type="Installation",
        resource_name=app,
        details=details,
    )


Handler = Callable[[JsonObject, RecordEvents, ParseContext, Any], None]
_G, _R = GrantAction.GRANT, GrantAction.REVOKE
HANDLERS: dict[str, tuple[Handler, Any]] = {
    "org.add_member": (_org_membership, _G),
    "org.remove_member": (_org_membership, _R),
    "org.update_member": (_org_role_change, None),
    "organization_moderators.add_user": (_org_moderator, _G),
    "organization_moderators.remove_user": (_org_moderator, _R),
    "team.add_member": (_team_membership, (_G, ("member",))),
    "team.remove_member": (_team_membership, (_R, ("member", "maintainer"))),
    "team.promote_maintainer": (_team_membership, (_G, ("maintainer",))),
    "team.demote_maintainer": (_team_membership, (_R, ("maintainer",))),
    "team.add_repository": (_team_repository, _G),
    "team.remove_repository": (_team_repository, _R),
    "team.update_repository_permission": (_repo_permission_change, True),
    "repo.add_member": (_repo_collaborator, _G),
    "repo.remove_member": (_repo_collaborator, _R),
    "repo.update_member": (_repo_permission_change, False),
    "business.add_admin": (_business_admin, _G),
    "business.remove_admin": (_business_admin, _R),
    "personal_access_token.access_granted": (_fine_grained_pat, _G),
    "personal_access_token.access_revoked": (_fine_grained_pat, _R),
    "integration_installation.create": (_app_installation, _G),
    "integration_installation.destroy": (_app_installation, _R),
}


def interpret(record: JsonObject, ctx: ParseContext) -> ParseResult:
    action = text(record.get("action")) or ""
    handler = HANDLERS.get(action)
    if handler is None:
        return ParseResult.skip("not_a_grant_event")
    occurred_at, details = event_time(
        ctx,
        record.get("@timestamp"),
        record.get("at_sign_timestamp"),
        record.get("created_at"),
        record.get("timestamp"),
    )
    scope = text(record.get("org")) or text(record.get("business"))
    out = RecordEvents(
        source_system=SYSTEM,
        identity=identify(record),
        occurred_at=occurred_at,
        source=f"github://{login(scope)}" if scope else "github",
        actor=_actor(record, ctx),
        details=details,
    )
    fn, arg = handler
    fn(record, out, ctx, arg)
    return out.result()


def parse(record: Any, ctx: ParseContext | None = None) -> list[ConnectorEvent]:
    """Pure: one GitHub audit entry into zero or more events (raises MalformedRecord)."""
    return interpret(normalize(record), ctx or ParseContext()).events
