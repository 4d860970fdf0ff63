"""How names compare: display names fold case and spacing; emails and logins are lower-cased."""

from __future__ import annotations

import re

from closeloop.contracts.identity import split_ref

_SPACES = re.compile(r"\s+")
_EMAIL = re.compile(r"[^@\s:]+@[^@\s:]+\.[^@\s:]+")
# Systems whose canonical references a ticket may write out in full; others are taken as `<type>:<id>`.
KNOWN_SYSTEMS = frozenset({"okta", "entra", "aws", "github", "k8s", "vault"})


def fold(name: str) -> str:
    """A display name as compared: case-insensitive, surrounding and repeated whitespace ignored."""
    return _SPACES.sub(" ", name.strip()).casefold()


def is_email(value: str) -> bool:
    return _EMAIL.fullmatch(value.strip()) is not None


def email_name(address: str) -> str:
    """The graph's name for an email address."""
    return f"email:{address.strip().lower()}"


def system_of(ref: str) -> str | None:
    try:
        return split_ref(ref)[0]
    except ValueError:
        return None


def canonical_parts(
    value: str, system: str | None, systems: frozenset[str] = KNOWN_SYSTEMS
) -> tuple[str, str, str] | None:
    """`(system, type, id)` when `value` is written `<system>:<type>:<id>` for a known (or the given) system."""
    try:
        head, ref_type, ref_id = split_ref(value.strip())
    except ValueError:
        return None
    head = head.strip().lower()
    if head in systems or head == system:
        return head, ref_type.strip().lower(), ref_id.strip()
    return None


def typed_parts(value: str) -> tuple[str, str] | None:
    """`(type, value)` when `value` is written `<type>:<value>` (a type is one word, no spaces)."""
    ref_type, sep, rest = value.strip().partition(":")
    ref_type = ref_type.strip().lower()
    if not sep or not ref_type or not rest.strip() or " " in ref_type or "/" in ref_type or "@" in ref_type:
        return None
    return ref_type, rest.strip()
