"""Canonical names: systems, principals, resources, kinds, per the closeloop key rules.

- `access_resource` is written canonical (`okta:group:00g1engadmins`), as `<type>:<id>` (prefixed with
  `access_system`), or as people name it (`Engineering Admins`, `acme/payments`): such a name becomes a provisional
  `<system>:<default type>:<name>` and the ticket keeps it as written for late binding (closeloop.identity).
- `requested_for` is canonical when it already has the `<system>:<type>:<id>` form, otherwise it becomes
  `<access_system>:user:<value>`.
- AWS ARNs are recognised wherever a reference is expected (`arn:aws:iam::1:role/x` -> `aws:role:<arn>`).
- Emails and logins are lower-cased in ids; other ids (group ids, ARNs) keep the case the vendor uses.
"""

from __future__ import annotations

import re

from closeloop.contracts.identity import IdentityKind, canonical_ref, split_ref
from closeloop.contracts.tickets import TicketKind
from closeloop.identity.names import typed_parts
from closeloop.settings import DEFAULT_RESOURCE_TYPES
from request_intake.mapping import CommonMapping, fold

_SYSTEM_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_ARN = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]+:[^:]*:[^:]*:(?P<resource>.+)$")
# A ServiceNow sys_id: a reference the mapping should have dot-walked to an email or login.
SYS_ID = re.compile(r"^[0-9a-f]{32}$")
# Principal types whose ids are logins or emails, which match case-insensitively at their source.
_LOGIN_TYPES = frozenset({"user"})
_K8S_SERVICE_ACCOUNT = re.compile(r"^system:serviceaccount:(?P<ns>[^:]+):(?P<name>[^:]+)$")


class NamingError(ValueError):
    """A value cannot be turned into a canonical name; the message says why (no input echoed back)."""


def normalize_system(raw: str, common: CommonMapping) -> str:
    folded = fold(raw)
    system = common.system_aliases.get(folded, folded.replace(" ", "_"))
    if not _SYSTEM_NAME.match(system):
        raise NamingError(f"{raw!r} is not a system name")
    return system


def _arn_ref(arn: str) -> str | None:
    match = _ARN.match(arn)
    if match is None:
        return None
    resource = match.group("resource")
    ref_type = resource.split("/", 1)[0].split(":", 1)[0] if "/" in resource or ":" in resource else resource
    return canonical_ref("aws", ref_type, arn)


def _lower_login(system: str, ref_type: str, ref_id: str) -> str:
    if "@" in ref_id or (ref_type in _LOGIN_TYPES and system != "aws"):
        return ref_id.lower()
    return ref_id


def _known_canonical(value: str, common: CommonMapping, system: str | None) -> tuple[str, str, str] | None:
    """The parts of `value` if it is already `<system>:<type>:<id>` for a known (or the given) system."""
    try:
        head, ref_type, ref_id = split_ref(value)
    except ValueError:
        return None
    head = head.strip().lower()
    if head in common.systems or head == system:
        return head, ref_type.strip().lower(), ref_id.strip()
    return None


def canonical_principal(raw: str, system: str | None, common: CommonMapping) -> str | None:
    """The canonical principal for a beneficiary, or None when no system is known to qualify it."""
    value = raw.strip()
    if value.startswith("arn:"):
        ref = _arn_ref(value)
        if ref is None:
            raise NamingError("looks like an ARN but is not one")
        return ref
    if SYS_ID.match(value):
        raise NamingError("is a ServiceNow sys_id reference; map a field holding the email or login instead")
    parts = _known_canonical(value, common, system)
    if parts is not None:
        head, ref_type, ref_id = parts
        return canonical_ref(head, ref_type, _lower_login(head, ref_type, ref_id))
    qualifier = system or common.identity_system
    if qualifier is None:
        return None
    k8s_sa = _K8S_SERVICE_ACCOUNT.match(value)
    if qualifier == "k8s" and k8s_sa is not None:
        # Kubernetes' own username form of a service account.
        return canonical_ref("k8s", "serviceaccount", f"{k8s_sa.group('ns')}/{k8s_sa.group('name')}")
    ref_type, sep, ref_id = value.partition(":")
    if sep and ref_type.strip() and ref_id.strip() and " " not in ref_type.strip():
        # `<type>:<id>` for the access system, e.g. `serviceaccount:payments/ci`.
        ref_type = ref_type.strip().lower()
        return canonical_ref(qualifier, ref_type, _lower_login(qualifier, ref_type, ref_id.strip()))
    return canonical_ref(qualifier, "user", _lower_login(qualifier, "user", value))


def canonical_resource(raw: str, system: str | None, common: CommonMapping) -> tuple[str, str]:
    """(system, canonical resource). Raises NamingError when no system qualifies a `<type>:<id>` value."""
    value = raw.strip()
    if value.startswith("arn:"):
        ref = _arn_ref(value)
        if ref is None:
            raise NamingError("looks like an ARN but is not one")
        resource_system = "aws"
    else:
        parts = _known_canonical(value, common, system)
        if parts is not None:
            resource_system, ref_type, ref_id = parts
            ref = canonical_ref(resource_system, ref_type, ref_id)
        else:
            if system is None:
                raise NamingError("is not canonical (<system>:<type>:<id>) and no access_system is given")
            typed = typed_parts(value)
            resource_system = system
            if typed is not None:
                ref = canonical_ref(system, *typed)
            else:
                # A name as people write it (a group's display name, `acme/payments`): kept as written in the
                # ticket's references and bound late by the catalog; this provisional id uses the default type.
                try:
                    ref = canonical_ref(system, DEFAULT_RESOURCE_TYPES.get(system, "resource"), value)
                except ValueError as exc:
                    raise NamingError(str(exc)) from exc
    if system is not None and resource_system != system:
        raise NamingError(f"belongs to system {resource_system!r} but access_system is {system!r}")
    return resource_system, ref


def default_privilege(resource: str, common: CommonMapping) -> str | None:
    system, ref_type, _ = split_ref(resource)
    return common.default_privileges.get(f"{system}:{ref_type}")


def parse_kind(raw: str, common: CommonMapping) -> TicketKind | None:
    folded = fold(raw)
    try:
        return TicketKind(folded.replace(" ", "_"))
    except ValueError:
        return common.kind_aliases.get(folded)


def parse_identity_kind(raw: str, common: CommonMapping) -> IdentityKind | None:
    folded = fold(raw)
    try:
        return IdentityKind(folded.replace(" ", "_"))
    except ValueError:
        return common.identity_kind_aliases.get(folded)


def implied_identity_kind(principal: str | None, common: CommonMapping) -> IdentityKind:
    if principal is None:
        return IdentityKind.UNKNOWN
    _, ref_type, ref_id = split_ref(principal)
    if ref_type == "user" and ref_id.endswith("[bot]"):
        return IdentityKind.BOT  # GitHub App bot accounts
    return common.principal_kinds_by_type.get(ref_type, IdentityKind.UNKNOWN)
