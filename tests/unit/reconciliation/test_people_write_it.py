"""Tickets naming people by email and resources by display name, `org/repo` or `<type>:<name>` produce exactly
the alerts of the same tickets written with canonical ids (pure join; the Kafka suite runs the same stories)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from closeloop.contracts.alerts import AlertActivity, DriftRule
from closeloop.contracts.tickets import TicketEvent, TicketKind, TicketTransition
from tests.unit.reconciliation.harness import Harness, activities
from tests.unit.reconciliation.people import SYSTEM_STORIES, as_people_write_it
from tests.unit.reconciliation.scenarios import (
    CATALOG,
    GRANTS,
    LINKS,
    SCENARIOS,
    TICKETS,
    Scenario,
    as_written,
    catalogued,
    grant,
    key,
    linked,
    ticket,
)

BASE = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
ID_RULES = [r for r in DriftRule if r not in (DriftRule.UNRESOLVED_REFERENCE, DriftRule.AMBIGUOUS_REFERENCE)]


def outcome(scenario: Scenario) -> tuple[list[tuple[DriftRule, AlertActivity]], set[tuple[str, DriftRule]]]:
    harness = Harness()
    emissions = harness.play(scenario, BASE)
    return activities(emissions), harness.open_alerts()


def untagged(alerts: set[tuple[str, DriftRule]], tag: str) -> set[tuple[str, DriftRule]]:
    return {(k.replace(tag, "<tag>"), rule) for k, rule in alerts}


@pytest.mark.parametrize("benign", [False, True])
@pytest.mark.parametrize("rule", ID_RULES)
def test_name_form_raises_what_the_id_form_raises(rule: DriftRule, benign: bool) -> None:
    by_id = SCENARIOS[rule](BASE, "idf", benign)
    by_name = as_people_write_it(SCENARIOS[rule](BASE, "nmf", benign), BASE)
    assert any(isinstance(e, TicketEvent) and e.references for _, e in by_name.inputs) or not any(
        isinstance(e, TicketEvent) and e.entitlement for _, e in by_id.inputs
    )
    id_activities, id_open = outcome(by_id)
    name_activities, name_open = outcome(by_name)
    assert name_activities == id_activities
    assert untagged(name_open, "nmf") == untagged(id_open, "idf")
    assert (id_activities == []) is benign


@pytest.mark.parametrize(("system", "story"), sorted(SYSTEM_STORIES))
@pytest.mark.parametrize("benign", [False, True])
def test_six_systems_name_form_equals_id_form(system: str, story: str, benign: bool) -> None:
    build = SYSTEM_STORIES[(system, story)]
    id_activities, id_open = outcome(build(system, BASE, "idf", benign))
    name_activities, name_open = outcome(as_people_write_it(build(system, BASE, "nmf", benign), BASE))
    assert name_activities == id_activities
    assert untagged(name_open, "nmf") == untagged(id_open, "idf")
    assert bool(id_open) is not benign


def test_ticket_naming_a_repository_binds_when_the_first_grant_teaches_it() -> None:
    """Late binding: nothing knows `acme/payments` when the ticket arrives; the grant teaches it, no alert."""
    user, repo = "github:user:ann-gh", "github:repo:acme/payments"
    approved = ticket(key(user, repo, "write"), TicketTransition.APPROVED, BASE, ticket_id="late")
    named = as_written(approved, user, repo, user, "acme/payments")
    harness = Harness()
    harness.feed((named), BASE)
    harness.feed(grant(key(user, repo, "write"), BASE + timedelta(seconds=1)), BASE + timedelta(seconds=1))
    for _ in range(3):
        harness.tick(BASE + timedelta(seconds=10))
    assert harness.open_alerts() == set()


def test_operator_alias_links_github_login_to_email() -> None:
    """The next ticket for the email approves the GitHub grant; a broader privilege raises SCOPE_EXCEEDS."""
    user, repo = "github:user:alice-gh", "github:repo:acme/api"
    harness = Harness()
    harness.feed(linked(("email:alice@example.com", user), BASE, accounts=(user,), origin="operator"), BASE)
    harness.feed(catalogued(repo, BASE), BASE)
    approved = ticket(key(user, repo, "write"), TicketTransition.APPROVED, BASE, ticket_id="alias")
    harness.feed(as_written(approved, "github:user:alice@example.com", repo, "alice@example.com", "acme/api"), BASE)
    harness.feed(grant(key(user, repo, "write"), BASE + timedelta(seconds=1)), BASE + timedelta(seconds=1))
    harness.feed(grant(key(user, repo, "admin"), BASE + timedelta(seconds=1)), BASE + timedelta(seconds=1))
    for _ in range(3):
        harness.tick(BASE + timedelta(seconds=10))
    assert harness.open_alerts() == {(f"{user}|{repo}|admin", DriftRule.SCOPE_EXCEEDS_APPROVAL)}


def test_offboarding_naming_only_an_email_reaches_every_linked_account() -> None:
    accounts = {
        "okta:user:bob@example.com": "okta:group:00gbob",
        "github:user:bob-gh": "github:repo:acme/bob",
        "aws:user:arn:aws:iam::123456789012:user/bob": "aws:policy:arn:aws:iam::aws:policy/ReadOnlyAccess",
        "entra:user:bob@example.com": "entra:group:9a8b",
        "k8s:user:bob@example.com": "k8s:clusterrole:view",
        "vault:user:bob": "vault:policy:payments",
    }
    harness = Harness()
    earlier = BASE - timedelta(hours=1)
    for principal, resource in accounts.items():
        link = linked((principal, "email:bob@example.com"), earlier, accounts=(principal,), origin=principal[:4])
        harness.feed(link, earlier)
        k = key(principal, resource, "read")
        harness.feed(ticket(k, TicketTransition.APPROVED, earlier, ticket_id=f"a-{principal}"), earlier)
        harness.feed(grant(k, earlier), earlier)
    offboarding = ticket(
        None, TicketTransition.CLOSED_COMPLETE, BASE, ticket_id="off", kind=TicketKind.OFFBOARDING,
        requested_for="bob@example.com",
    )  # fmt: skip
    harness.feed(offboarding, BASE)
    for _ in range(3):
        harness.tick(BASE + timedelta(seconds=10))
    expected = {(f"{p}|{r}|read", DriftRule.CLOSED_NOT_REMOVED) for p, r in accounts.items()}
    assert harness.open_alerts() == expected


def test_unknown_and_ambiguous_names_never_bind_to_a_guess() -> None:
    harness = Harness()
    for resource in ("okta:group:00ga", "okta:group:00gb"):
        harness.feed(catalogued(resource, BASE, "Ops"), BASE)
    approved = ticket(key("okta:user:c@example.com", "okta:group:00ga", "member"), TicketTransition.APPROVED, BASE, ticket_id="amb")
    harness.feed(as_written(approved, "okta:user:c@example.com", "okta:group:Ops", "c@example.com", "Ops"), BASE)
    harness.feed(grant(key("okta:user:c@example.com", "okta:group:00ga", "member"), BASE), BASE)
    for _ in range(3):
        harness.tick(BASE + timedelta(seconds=10))
    assert harness.open_alerts() == {
        ("okta:user:c@example.com|okta:group:Ops|member", DriftRule.AMBIGUOUS_REFERENCE),
        ("okta:user:c@example.com|okta:group:00ga|member", DriftRule.UNTICKETED_GRANT),
    }
    assert {TICKETS, GRANTS, LINKS, CATALOG}  # the roles the Kafka suite publishes
