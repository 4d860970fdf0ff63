"""Ids that go into an IAM API path, checked against the vendor's own id rules before any request.

An entitlement key's ids come from tickets and vendor events, so they are untrusted: `group:..` would
turn `/api/v1/groups/{id}/users/{user}` into `/api/v1/users/{user}` once a client or proxy normalises
the path, and `DELETE` on that deactivates the user. Each id is matched against the format the vendor
issues (anchored patterns without nested repetition: linear time), `.` and `..` are refused whatever
the format, and every path segment is percent-encoded fully (dots included), so a valid id can never
be read as a path step.
"""

from __future__ import annotations

import re
from urllib.parse import quote


class InvalidVendorId(ValueError):
    """The id is not one the vendor issues; no request is sent."""


# Okta object ids: `00` then alphanumerics (users 00u…, groups 00g…; 20 characters in production).
OKTA_OBJECT_ID = re.compile(r"00[A-Za-z0-9]{6,30}")
# Okta logins are email-like user names, at most 100 characters; no path or query characters.
OKTA_LOGIN = re.compile(r"[A-Za-z0-9!$&'*+=^_`{|}~.@-]{1,100}")
# GitHub logins and organisation names: alphanumerics and single inner hyphens, at most 39 characters.
GITHUB_LOGIN = re.compile(r"[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}")
# Team slugs are derived from team names: lower-case alphanumerics, `-` and `_`.
GITHUB_TEAM_SLUG = re.compile(r"[a-z0-9_-]{1,100}")
# Repository names: alphanumerics, `-`, `_` and `.`, at most 100 characters (`.` and `..` refused below).
GITHUB_REPOSITORY = re.compile(r"[A-Za-z0-9._-]{1,100}")


def _check(value: str, pattern: re.Pattern[str], what: str) -> str:
    if value in (".", "..") or pattern.fullmatch(value) is None:
        raise InvalidVendorId(f"{what} {value[:80]!r} is not a valid {what}")
    return value


def okta_object_id(value: str, what: str = "Okta id") -> str:
    return _check(value, OKTA_OBJECT_ID, what)


def okta_user(value: str) -> str:
    """An Okta user id or login."""
    if OKTA_OBJECT_ID.fullmatch(value):
        return value
    return _check(value, OKTA_LOGIN, "Okta login")


def github_login(value: str, what: str = "GitHub login") -> str:
    return _check(value, GITHUB_LOGIN, what)


def github_team(value: str) -> tuple[str, str]:
    """`<org>/<team slug>` -> (org, slug)."""
    org, sep, slug = value.partition("/")
    if not sep:
        raise InvalidVendorId(f"GitHub team {value[:80]!r} is not <org>/<team slug>")
    return github_login(org, "GitHub organisation"), _check(slug, GITHUB_TEAM_SLUG, "GitHub team slug")


def github_repository(value: str) -> tuple[str, str]:
    """`<owner>/<repository>` -> (owner, repository)."""
    owner, sep, name = value.partition("/")
    if not sep:
        raise InvalidVendorId(f"GitHub repository {value[:80]!r} is not <owner>/<name>")
    return github_login(owner, "GitHub owner"), _check(name, GITHUB_REPOSITORY, "GitHub repository")


def segment(value: str) -> str:
    """One path segment, percent-encoded fully: reserved characters and dots too."""
    if value in ("", ".", ".."):
        raise InvalidVendorId(f"{value!r} cannot be a path segment")
    return quote(value, safe="").replace(".", "%2E")
