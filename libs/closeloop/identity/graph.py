"""The identity graph, in memory: every name one identity goes by, and which of them are accounts.

Names are canonical references (`okta:user:alice@example.com`, `okta:user:00u1abc`, `github:user:alice-gh`,
`aws:user:arn:…`) or `email:<address>`. An *account* is a name a source uses as the principal of its grants;
other names (vendor ids, emails) are aliases that lead to accounts.

Two identities never merge by observation: names seen together that already belong to different identities are
a conflict, recorded and reported, and nothing moves. The operator (alias file, CLI) wins: an operator link
merges the identities of the names it lists.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from closeloop.identity.names import system_of

OPERATOR = "operator"
RULE = "rule"
MAX_CONFLICTS = 1000


@dataclass(frozen=True)
class LinkConflict:
    """Names seen together (by `origin`) that the graph gives to different identities; nothing was merged."""

    names: tuple[str, ...]
    identities: tuple[str, ...]
    origin: str


def preferred_identity_id(names: Sequence[str]) -> str:
    """An email address is the most portable identity id; otherwise the first name."""
    for name in names:
        if name.startswith("email:"):
            return name.removeprefix("email:")
    return names[0]


def _clean(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(n.strip() for n in names if n and n.strip()))


class IdentityGraph:
    def __init__(self) -> None:
        self._identity: dict[str, str] = {}
        self._members: dict[str, set[str]] = {}
        self._origin: dict[str, str] = {}
        self._accounts: set[str] = set()
        self.conflicts: deque[LinkConflict] = deque(maxlen=MAX_CONFLICTS)
        # name -> the names it was seen with in a conflicting link (a decision about it must not guess).
        self._disputed: dict[str, frozenset[str]] = {}
        self.version = 0

    def __len__(self) -> int:
        return len(self._identity)

    def identity_of(self, name: str) -> str | None:
        return self._identity.get(name)

    def origin_of(self, name: str) -> str | None:
        return self._origin.get(name)

    def names_of(self, name: str) -> frozenset[str]:
        """Every name of the identity `name` belongs to (just `name` when the graph does not know it)."""
        identity = self._identity.get(name)
        return frozenset(self._members[identity]) if identity is not None else frozenset({name})

    def accounts_on(self, name: str, system: str) -> tuple[str, ...]:
        """The accounts on `system` of the identity `name` belongs to, sorted."""
        return tuple(sorted(n for n in self.names_of(name) if n in self._accounts and system_of(n) == system))

    def disputed_accounts_on(self, name: str, system: str) -> tuple[str, ...]:
        """Accounts on `system` that a conflicting link put together with any name of `name`'s identity."""
        seen = {n for own in self.names_of(name) for n in self._disputed.get(own, ())}
        return tuple(sorted(n for n in seen if system_of(n) == system))

    def is_disputed(self, names: Iterable[str]) -> bool:
        listed = frozenset(names)
        return bool(listed) and all(self._disputed.get(n, frozenset()) >= listed for n in listed)

    def is_account(self, name: str) -> bool:
        return name in self._accounts

    def identities(self) -> dict[str, frozenset[str]]:
        return {identity: frozenset(names) for identity, names in self._members.items()}

    def link(
        self,
        names: Iterable[str],
        origin: str,
        *,
        accounts: Iterable[str] = (),
        identity_id: str | None = None,
    ) -> LinkConflict | None:
        """Record that `names` are one identity (`accounts` among them are principals at their source)."""
        listed = _clean(names)
        account_names = {a for a in _clean(accounts) if a in listed}
        if origin == OPERATOR:
            self._link_operator(listed, identity_id)
        elif listed:
            known = sorted({self._identity[n] for n in listed if n in self._identity})
            if len(known) > 1:
                conflict = LinkConflict(names=tuple(listed), identities=tuple(known), origin=origin)
                if self._disputed.get(listed[0]) != frozenset(listed):
                    self.conflicts.append(conflict)
                    if len(self._disputed) < MAX_CONFLICTS * 10:
                        for name in listed:
                            self._disputed[name] = self._disputed.get(name, frozenset()) | frozenset(listed)
                return conflict
            identity = known[0] if known else (identity_id or preferred_identity_id(listed))
            for name in listed:
                if name not in self._identity:
                    self._assign(name, identity, origin)
        new_accounts = account_names - self._accounts
        if new_accounts:
            self._accounts |= new_accounts
            self.version += 1
        return None

    def _link_operator(self, names: list[str], identity_id: str | None) -> None:
        if not names:
            return
        target = identity_id or preferred_identity_id(names)
        merged = {self._identity[n] for n in names if n in self._identity} - {target}
        for identity in merged:
            for name in list(self._members.get(identity, ())):
                self._assign(name, target, self._origin.get(name, OPERATOR))
        for name in names:
            self._assign(name, target, OPERATOR)

    def _assign(self, name: str, identity: str, origin: str) -> None:
        previous = self._identity.get(name)
        if previous == identity and self._origin.get(name) == origin:
            return
        if previous is not None:
            members = self._members[previous]
            members.discard(name)
            if not members:
                del self._members[previous]
        self._identity[name] = identity
        self._members.setdefault(identity, set()).add(name)
        self._origin[name] = origin
        self.version += 1
