"""The same stories written the way people write tickets: people by email, resources by display name, `org/repo`
or `<type>:<name>`; and what connectors and operators taught closeloop about those names.

`as_people_write_it` rewrites every ticket of a scenario as request-intake publishes it for such a ticket (a
provisional key, the names kept as written) and puts in front what a connector snapshot or the operator's alias
and catalog files would have taught. The alerts must be exactly those of the canonical-id story.

`SYSTEM_STORIES` adds, on each of the six systems, a story of a ticket approving less than was granted, and one of
a revocation closed while the grant stays live, each with its benign twin.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta

from closeloop.contracts.alerts import DriftRule
from closeloop.contracts.base import Envelope
from closeloop.contracts.grants import GrantAction
from closeloop.contracts.identity import canonical_ref, split_ref
from closeloop.contracts.tickets import TicketEvent, TicketKind, TicketTransition
from closeloop.identity.correlation import DEFAULT_RULES
from closeloop.identity.names import email_name, is_email
from closeloop.settings import DEFAULT_RESOURCE_TYPES
from tests.unit.reconciliation.scenarios import (
    CATALOG,
    GRANTS,
    LINKS,
    TICKETS,
    Scenario,
    as_written,
    catalogued,
    grant,
    key,
    linked,
    ticket,
)


def person_form(principal: str, at: datetime) -> tuple[str, str, list[tuple[str, Envelope]]]:
    """(as written, intake's provisional principal, what taught the link). NHIs are named by their ids."""
    system, ref_type, ref_id = split_ref(principal)
    if ref_type != "user":
        return principal, principal, []
    if is_email(ref_id):
        email = ref_id.lower()
    else:
        email = re.sub(r"[^a-z0-9.-]", "-", ref_id.rsplit("/", 1)[-1].lower()) + "@people.example.com"
    provisional = canonical_ref(system, "user", email)
    rule = DEFAULT_RULES.get(system)
    if rule is not None and rule.account(email) == principal:
        return email, provisional, []  # the system's correlation rule binds it
    return (
        email,
        provisional,
        [(LINKS, linked((principal, email_name(email)), at, accounts=(principal,), origin=system))],
    )


def resource_form(resource: str, at: datetime) -> tuple[str, str, list[tuple[str, Envelope]]]:
    """(as written, intake's provisional resource, what taught the name)."""
    system, ref_type, ref_id = split_ref(resource)
    default = DEFAULT_RESOURCE_TYPES.get(system)
    if system == "github" and ref_type == "repo":
        return ref_id, resource, [(CATALOG, catalogued(resource, at))]  # `org/repo` is how people name it
    display = ref_id.rsplit("/", 1)[-1] if ref_id.startswith("arn:") else f"{ref_type.title()} {ref_id}"
    written = display if default == ref_type else f"{ref_type}:{display}"
    provisional = canonical_ref(system, ref_type, display)
    return written, provisional, [(CATALOG, catalogued(resource, at, display))]


def as_people_write_it(scenario: Scenario, base: datetime) -> Scenario:
    taught: dict[str, tuple[str, Envelope]] = {}
    inputs: list[tuple[str, Envelope]] = []
    for role, event in scenario.inputs:
        if role == TICKETS and isinstance(event, TicketEvent) and event.entitlement and event.references is None:
            k = event.entitlement
            person, principal, links = person_form(k.principal, base - timedelta(days=1))
            written, resource, names = resource_form(k.resource, base - timedelta(days=1))
            for item in (*links, *names):
                taught.setdefault(str(item[1].model_dump(include={"names", "resource"})), item)
            event = as_written(event, principal, resource, person, written)
        inputs.append((role, event))
    return replace(scenario, inputs=[*taught.values(), *inputs])


SYSTEM_ACCOUNTS: dict[str, tuple[str, str]] = {
    "okta": ("okta:user:ann.{tag}@example.com", "okta:group:00g{tag}eng"),
    "entra": ("entra:user:ann.{tag}@example.com", "entra:group:7f1e2d3c-{tag}"),
    "aws": ("aws:user:arn:aws:iam::123456789012:user/ann-{tag}", "aws:policy:arn:aws:iam::123456789012:policy/Billing{tag}"),
    "github": ("github:user:ann-gh-{tag}", "github:repo:acme/payments-{tag}"),
    "k8s": ("k8s:user:ann.{tag}@example.com", "k8s:clusterrole:payments-{tag}"),
    "vault": ("vault:user:ann-{tag}", "vault:policy:payments-{tag}"),
}  # fmt: skip


def scope_story(system: str, base: datetime, tag: str, benign: bool) -> Scenario:
    principal, resource = (t.format(tag=tag) for t in SYSTEM_ACCOUNTS[system])
    approved, granted = key(principal, resource, "read"), key(principal, resource, "read" if benign else "admin")
    inputs: list[tuple[str, Envelope]] = [
        (TICKETS, ticket(approved, TicketTransition.APPROVED, base - timedelta(minutes=5), ticket_id=f"s-{tag}")),
        (GRANTS, grant(granted, base)),
    ]
    return Scenario(f"scope_{system}", None if benign else DriftRule.SCOPE_EXCEEDS_APPROVAL, inputs, str(granted))


def revocation_story(system: str, base: datetime, tag: str, benign: bool) -> Scenario:
    principal, resource = (t.format(tag=tag) for t in SYSTEM_ACCOUNTS[system])
    k = key(principal, resource, "read")
    earlier = base - timedelta(hours=1)
    inputs: list[tuple[str, Envelope]] = [
        (TICKETS, ticket(k, TicketTransition.APPROVED, earlier, ticket_id=f"a-{tag}")),
        (GRANTS, grant(k, earlier + timedelta(minutes=1))),
        (
            TICKETS,
            ticket(k, TicketTransition.CLOSED_COMPLETE, base, ticket_id=f"r-{tag}", kind=TicketKind.REVOCATION_REQUEST),
        ),
    ]
    if benign:
        inputs.append((GRANTS, grant(k, base + timedelta(milliseconds=500), action=GrantAction.REVOKE)))
    return Scenario(f"revocation_{system}", None if benign else DriftRule.CLOSED_NOT_REMOVED, inputs, str(k))


def alias_story(base: datetime, tag: str) -> tuple[list[tuple[str, Envelope]], set[tuple[str, DriftRule]]]:
    """An operator alias links a GitHub login to an email; the next ticket for the email approves the GitHub
    grant (no UNTICKETED_GRANT), while a broader privilege raises SCOPE_EXCEEDS_APPROVAL."""
    user, repo, email = f"github:user:alice-{tag}", f"github:repo:acme/api-{tag}", f"alice.{tag}@example.com"
    approved = ticket(key(user, repo, "write"), TicketTransition.APPROVED, base, ticket_id=f"alias-{tag}")
    inputs: list[tuple[str, Envelope]] = [
        (LINKS, linked((email_name(email), user), base, accounts=(user,), origin="operator")),
        (TICKETS, as_written(approved, f"github:user:{email}", repo, email, f"acme/api-{tag}")),
        (GRANTS, grant(key(user, repo, "write"), base + timedelta(seconds=1))),
        (GRANTS, grant(key(user, repo, "admin"), base + timedelta(seconds=1))),
    ]
    return inputs, {(f"{user}|{repo}|admin", DriftRule.SCOPE_EXCEEDS_APPROVAL)}


OFFBOARDED_ACCOUNTS = {
    "okta:user:bob.{tag}@example.com": "okta:group:00gbob{tag}",
    "github:user:bob-{tag}": "github:repo:acme/bob-{tag}",
    "aws:user:arn:aws:iam::123456789012:user/bob-{tag}": "aws:policy:arn:aws:iam::aws:policy/ReadOnlyAccess",
    "entra:user:bob.{tag}@example.com": "entra:group:9a8b{tag}",
    "k8s:user:bob.{tag}@example.com": "k8s:clusterrole:view-{tag}",
    "vault:user:bob-{tag}": "vault:policy:payments-{tag}",
}


def offboarding_story(base: datetime, tag: str) -> tuple[list[tuple[str, Envelope]], set[tuple[str, DriftRule]]]:
    """An offboarding ticket naming only an email: CLOSED_NOT_REMOVED on every linked account still live, in every
    system (the one account revoked in time raises nothing)."""
    email = f"bob.{tag}@example.com"
    earlier = base - timedelta(hours=1)
    inputs: list[tuple[str, Envelope]] = []
    expected: set[tuple[str, DriftRule]] = set()
    for template, resource_template in OFFBOARDED_ACCOUNTS.items():
        principal, resource = template.format(tag=tag), resource_template.format(tag=tag)
        system = principal.split(":", 1)[0]
        k = key(principal, resource, "read")
        inputs += [
            (LINKS, linked((principal, email_name(email)), earlier, accounts=(principal,), origin=system)),
            (TICKETS, ticket(k, TicketTransition.APPROVED, earlier, ticket_id=f"a-{system}-{tag}")),
            (GRANTS, grant(k, earlier)),
        ]
        if system == "okta":
            inputs.append((GRANTS, grant(k, base + timedelta(milliseconds=500), action=GrantAction.REVOKE)))
        else:
            expected.add((str(k), DriftRule.CLOSED_NOT_REMOVED))
    offboarding = ticket(
        None, TicketTransition.CLOSED_COMPLETE, base, ticket_id=f"off-{tag}", kind=TicketKind.OFFBOARDING,
        requested_for=email,
    )  # fmt: skip
    inputs.append((TICKETS, offboarding))
    return inputs, expected


def late_binding_story(base: datetime, tag: str) -> tuple[list[tuple[str, Envelope]], set[tuple[str, DriftRule]]]:
    """Nothing knows `acme/payments-<tag>` or the person's GitHub login when the ticket arrives; the first grant
    teaches both (its record carries the verified email): the ticket binds, no alert."""
    user, repo, email = f"github:user:ann-{tag}", f"github:repo:acme/payments-{tag}", f"ann.{tag}@example.com"
    approved = ticket(key(user, repo, "write"), TicketTransition.APPROVED, base, ticket_id=f"late-{tag}")
    taught = grant(key(user, repo, "write"), base + timedelta(seconds=1)).model_copy(
        update={"principal_aliases": (email_name(email),)}
    )
    inputs: list[tuple[str, Envelope]] = [
        (TICKETS, as_written(approved, f"github:user:{email}", repo, email, f"acme/payments-{tag}")),
        (GRANTS, taught),
    ]
    return inputs, set()


SYSTEM_STORIES = {
    (system, story.__name__): story for system in SYSTEM_ACCOUNTS for story in (scope_story, revocation_story)
}
