"""Identity kinds and automation: what the vendor says, refined by configurable name patterns.

Vendors say whether an actor is a user, an app or a service; they rarely say "this user is a CI bot"
or "this app is an AI agent". Names do: `dependabot[bot]`, `svc-terraform`, `ci-deployer`,
`homelab-agentic-mgmt`. The patterns are configurable (settings), matched case-insensitively.
An actor is automation when its kind is non-human (service account, API token, application, bot,
workload, AI agent) or when the vendor says so; the reconciler's UNREVIEWED_AUTOMATED_CHANGE rule
relies on `Actor.is_automation`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from closeloop.contracts.grants import Actor
from closeloop.contracts.identity import IdentityKind

_EDGE_L = r"(?:^|[^a-z0-9])"
_EDGE_R = r"(?:[^a-z0-9]|$)"

DEFAULT_AGENT_PATTERNS: tuple[str, ...] = (
    _EDGE_L
    + r"(?:ai[-_.]?agents?|agentic|llm|gpt|copilot|claude|gemini|mcp|openai|anthropic|langchain|autogen|crewai)"
    + _EDGE_R,
)
DEFAULT_BOT_PATTERNS: tuple[str, ...] = (
    r"\[bot\]$",
    _EDGE_L + r"bots?" + _EDGE_R,
    r"(?:dependabot|renovate|mergify|bot)$",
)
DEFAULT_SERVICE_PATTERNS: tuple[str, ...] = (
    r"^(?:svc|srv|sa|service|robot|system)[-_.:]",
    _EDGE_L
    + r"(?:ci|cd|cicd|pipeline|deploy|deployer|deployment|terraform|automation|jenkins|github-actions|gitlab-runner"
    r"|argocd|argo-cd|flux|spinnaker|atlantis|buildkite|circleci)" + _EDGE_R,
)


def _compile(patterns: Iterable[str]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


@dataclass(frozen=True)
class IdentityClassifier:
    agent: tuple[re.Pattern[str], ...]
    bot: tuple[re.Pattern[str], ...]
    service: tuple[re.Pattern[str], ...]

    @classmethod
    def from_patterns(
        cls,
        agent: Iterable[str] = DEFAULT_AGENT_PATTERNS,
        bot: Iterable[str] = DEFAULT_BOT_PATTERNS,
        service: Iterable[str] = DEFAULT_SERVICE_PATTERNS,
    ) -> IdentityClassifier:
        return cls(agent=_compile(agent), bot=_compile(bot), service=_compile(service))

    def kind_from_names(self, names: Sequence[str | None]) -> IdentityKind | None:
        present = [n for n in names if n and len(n) <= MAX_CLASSIFIED_NAME_CHARS]
        for patterns, kind in (
            (self.agent, IdentityKind.AI_AGENT),
            (self.bot, IdentityKind.BOT),
            (self.service, IdentityKind.SERVICE_ACCOUNT),
        ):
            if any(p.search(name) for p in patterns for name in present):
                return kind
        return None

    def kind(self, vendor_kind: IdentityKind, *names: str | None) -> IdentityKind:
        """The vendor's kind, unless a name says more: an AI agent pattern wins over any vendor kind,
        other patterns only refine a human or unknown kind."""
        by_name = self.kind_from_names(names)
        if by_name is IdentityKind.AI_AGENT:
            return by_name
        if by_name is not None and vendor_kind in (IdentityKind.HUMAN, IdentityKind.UNKNOWN):
            return by_name
        return vendor_kind

    def actor(
        self,
        actor_id: str | None,
        name: str | None,
        vendor_kind: IdentityKind,
        *other_names: str | None,
        vendor_automation: bool = False,
    ) -> Actor | None:
        if not actor_id and not name:
            return None
        kind = self.kind(vendor_kind, actor_id, name, *other_names)
        return Actor(
            id=(actor_id or name or "unknown")[:600],
            name=name[:300] if name else None,
            kind=kind,
            is_automation=vendor_automation or kind.is_nhi,
        )


DEFAULT_CLASSIFIER = IdentityClassifier.from_patterns()


# RFC 5321 limits a path to 256 octets; 320 leaves room for display quirks and stays cheap to scan.
MAX_EMAIL_CHARS = 320
# Names are classified by pattern only up to this length (patterns are configurable; this bounds their work).
MAX_CLASSIFIED_NAME_CHARS = 256


def login(value: str) -> str:
    """Logins and emails are compared case-insensitively everywhere: canonical ids use lower case."""
    return value.strip().lower()


def looks_like_email(value: str | None) -> bool:
    """`local@domain.tld`: one `@`, no whitespace, a dot inside the domain. Linear, without a regex
    (`[^@\\s]+@[^@\\s]+\\.[^@\\s]+` backtracks quadratically on `a@a.a.a...@`), and capped."""
    if not value or len(value) > MAX_EMAIL_CHARS or value.count("@") != 1:
        return False
    if any(c.isspace() for c in value):
        return False
    local, _, domain = value.partition("@")
    return bool(local) and "." in domain[1:-1]


def email_alias(*values: str | None) -> list[str]:
    """`email:<address>` aliases for the values that are email addresses."""
    return [f"email:{login(v)}" for v in values if v and looks_like_email(v)]
