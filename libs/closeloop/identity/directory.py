"""Resolution: a reference as a ticket wrote it (an email, a login, a group's name, `acme/payments`, a policy name)
to canonical keys, against the identity graph, the resource catalog and the correlation rules.

- A person named by email resolves to every account of theirs on the ticket's system the graph knows (a ticket
  for a person approves the grant to any of their linked accounts), else through the system's correlation
  rule, else it is unresolved (for now: a later link binds it).
- A person named by a login or a canonical reference is that account, and the accounts the graph links to it.
- A resource named by its canonical id, an ARN or `<type>:<id>` is that id, unless the catalog knows the id
  only as another resource's name. A bare name resolves through the catalog, in the system's default type first:
  one match binds, several are ambiguous (never guessed), none is unresolved (for now).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from closeloop.contracts.base import Envelope
from closeloop.contracts.directory import IdentityLinked, ResourceCatalogued
from closeloop.contracts.grants import GrantEvent, PrincipalStatusChanged
from closeloop.contracts.identity import canonical_ref, split_ref
from closeloop.identity.catalog import ResourceCatalog
from closeloop.identity.correlation import DEFAULT_RULES, CorrelationRule, parse_rules
from closeloop.identity.graph import IdentityGraph, LinkConflict
from closeloop.identity.names import canonical_parts, email_name, is_email, typed_parts
from closeloop.settings import DEFAULT_RESOURCE_TYPES, IdentitySettings


class Outcome(StrEnum):
    BOUND = "bound"
    UNRESOLVED = "unresolved"
    AMBIGUOUS = "ambiguous"


@dataclass(frozen=True)
class Resolution:
    """`values`: the canonical references when bound, the candidates when ambiguous."""

    outcome: Outcome
    written: str
    values: tuple[str, ...] = ()
    how: str = ""

    @property
    def bound(self) -> bool:
        return self.outcome is Outcome.BOUND


def _bound(written: str, values: tuple[str, ...], how: str) -> Resolution:
    return Resolution(Outcome.BOUND, written, values, how)


def _matches(written: str, found: tuple[str, ...], how: str) -> Resolution:
    if len(found) == 1:
        return _bound(written, found, how)
    if found:
        return Resolution(Outcome.AMBIGUOUS, written, found, how)
    return Resolution(Outcome.UNRESOLVED, written)


class Directory:
    """The identity graph, the resource catalog and the rules that resolve references against them."""

    def __init__(
        self,
        *,
        default_types: Mapping[str, str] | None = None,
        rules: Mapping[str, CorrelationRule] | None = None,
    ) -> None:
        self.graph = IdentityGraph()
        self.catalog = ResourceCatalog()
        self.default_types = dict(DEFAULT_RESOURCE_TYPES if default_types is None else default_types)
        self.rules = dict(DEFAULT_RULES if rules is None else rules)

    @classmethod
    def from_settings(cls, settings: IdentitySettings) -> Directory:
        return cls(default_types=settings.default_resource_types, rules=parse_rules(settings.correlation_rules))

    @property
    def version(self) -> int:
        """Grows whenever a link or a catalog entry changed what a reference could resolve to."""
        return self.graph.version + self.catalog.version

    # --- learning ------------------------------------------------------------------------------------------

    def apply(self, event: Envelope) -> LinkConflict | None:
        """Fold one announcement into the graph or the catalog; a link conflict comes back (nothing merged)."""
        if isinstance(event, IdentityLinked):
            return self.graph.link(event.names, event.origin, accounts=event.accounts, identity_id=event.identity_id)
        if isinstance(event, ResourceCatalogued):
            self.catalog.learn(
                event.resource, display_name=event.display_name, aliases=event.aliases, origin=event.origin
            )
        return None

    def observe(self, event: Envelope, source: str) -> list[Envelope]:
        """What a grant or status event teaches that the directory did not know: announcements, already applied."""
        taught: list[Envelope] = []
        if isinstance(event, GrantEvent | PrincipalStatusChanged):
            principal = event.key.principal if isinstance(event, GrantEvent) else event.principal
            # An announcement carries at most 50 names (the contract's bound); a record rarely shows more than 3.
            aliases = tuple(dict.fromkeys(a for a in event.principal_aliases if a and a != principal))[:49]
            names = (principal, *aliases)
            known = self.graph.names_of(principal)
            # A principal seen alone teaches nothing a ticket could use (its own name resolves to itself).
            new = bool(aliases) and (not self.graph.is_account(principal) or any(n not in known for n in aliases))
            if new and not self.graph.is_disputed(names):
                link = IdentityLinked.create(
                    names=names,
                    accounts=(principal,),
                    origin=event.source_system,
                    occurred_at=event.occurred_at,
                    source=source,
                    correlation_id=event.correlation_id,
                )
                self.apply(link)
                taught.append(link)
        if isinstance(event, GrantEvent):
            resource, name = event.key.resource, event.resource_name
            entry = self.catalog.get(resource)
            if entry is None or (name and name.strip() and entry.display_name != name.strip()):
                catalogued = ResourceCatalogued.create(
                    resource=resource,
                    display_name=name,
                    origin=event.source_system,
                    occurred_at=event.occurred_at,
                    source=source,
                    correlation_id=event.correlation_id,
                )
                self.apply(catalogued)
                taught.append(catalogued)
        return taught

    # --- resolving -----------------------------------------------------------------------------------------

    def resolve_person(self, written: str, system: str, provisional: str | None = None) -> Resolution:
        """Accounts on `system` for a beneficiary as written; `provisional` is intake's canonical reading."""
        value = written.strip()
        if is_email(value):
            address = value.lower()
            accounts = self.graph.accounts_on(email_name(address), system) or self.graph.accounts_on(
                canonical_ref(system, "user", address), system
            )
            if accounts:
                return _bound(written, accounts, "identity graph")
            disputed = self.graph.disputed_accounts_on(email_name(address), system)
            if disputed:
                # A record linked this person to an account another identity holds: a decision must not guess.
                return Resolution(Outcome.AMBIGUOUS, written, disputed, "conflicting identity links")
            rule = self.rules.get(system)
            account = rule.account(address) if rule is not None else None
            if account is not None:
                return _bound(written, (account,), f"correlation rule {rule.template if rule else ''}")
            return Resolution(Outcome.UNRESOLVED, written)
        try:
            own = provisional or canonical_ref(system, "user", value.lower())
        except ValueError:
            return Resolution(Outcome.UNRESOLVED, written)
        target = split_ref(own)[0]
        return _bound(written, self.graph.accounts_on(own, target) or (own,), "account")

    def resolve_resource(self, written: str, system: str, provisional: str | None = None) -> Resolution:
        """The canonical resource for a resource as written on `system`."""
        value = written.strip()
        parts = canonical_parts(value, system)
        typed = typed_parts(value) if parts is None and not value.startswith("arn:") else None
        if provisional is not None and (parts is not None or value.startswith("arn:")):
            return self._by_id(written, provisional)
        if parts is not None:
            return self._by_id(written, canonical_ref(*parts))
        if typed is not None:
            try:
                return self._by_id(written, canonical_ref(system, *typed))
            except ValueError:
                return Resolution(Outcome.UNRESOLVED, written)
        default = self.default_types.get(system)
        found = self.catalog.find(system, value, default) if default else ()
        return _matches(written, found or self.catalog.find(system, value), "resource catalog")

    def _by_id(self, written: str, ref: str) -> Resolution:
        if self.catalog.get(ref) is not None:
            return _bound(written, (ref,), "id")
        system, ref_type, ref_id = split_ref(ref)
        found = self.catalog.find(system, ref_id, ref_type)
        if found:
            return _matches(written, found, "resource catalog")
        return _bound(written, (ref,), "id")

    # --- people --------------------------------------------------------------------------------------------

    def person_ids(self, principal: str) -> frozenset[str]:
        """The bare ids (emails, logins) a person-level ticket may use for this principal's identity."""
        ids = set()
        for name in self.graph.names_of(principal):
            if name.startswith("email:"):
                ids.add(name.removeprefix("email:").lower())
                continue
            try:
                _, ref_type, ref_id = split_ref(name)
            except ValueError:
                continue
            if ref_type == "user":
                ids.add(ref_id.lower())
        return frozenset(ids)
