"""Correlation rules: how a person's email becomes their account on a system when no record linked them.

A rule per system is a template over the email (`{email}`, `{local}`, `{domain}`), optionally with a regular
expression whose named groups the template may use too. For example Okta logins are emails
(`okta:user:{email}`), Entra UPNs are emails (`entra:user:{email}`), an AWS SSO user name is the local part
(`aws:ssouser:{local}`), GitHub logins follow a house convention (`github:user:{local}-acme`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from closeloop.contracts.identity import canonical_ref, split_ref
from closeloop.settings import DEFAULT_CORRELATION_RULES


@dataclass(frozen=True)
class CorrelationRule:
    system: str
    template: str
    pattern: re.Pattern[str] | None = None

    def account(self, email: str) -> str | None:
        address = email.strip().lower()
        local, _, domain = address.partition("@")
        values = {"email": address, "local": local, "domain": domain}
        if self.pattern is not None:
            match = self.pattern.fullmatch(address)
            if match is None:
                return None
            values |= {k: v for k, v in match.groupdict().items() if v is not None}
        try:
            return canonical_ref(*split_ref(self.template.format(**values)))
        except (KeyError, IndexError, ValueError):
            return None


def parse_rules(spec: Mapping[str, Any]) -> dict[str, CorrelationRule]:
    """`{system: template}` or `{system: {template, match}}` to rules; raises ValueError on a bad rule."""
    rules: dict[str, CorrelationRule] = {}
    for system, value in spec.items():
        template, match = (value, None) if isinstance(value, str) else (value.get("template"), value.get("match"))
        if not isinstance(template, str) or not template.strip():
            raise ValueError(f"correlation rule for {system}: a template is required")
        if not template.startswith(f"{system}:"):
            raise ValueError(f"correlation rule for {system}: the template must produce a {system}: reference")
        pattern = re.compile(match, re.IGNORECASE) if isinstance(match, str) else None
        rules[system] = CorrelationRule(system=system, template=template, pattern=pattern)
    return rules


DEFAULT_RULES = parse_rules(DEFAULT_CORRELATION_RULES)
