"""Resolution of references as people write them, against the identity graph and the resource catalog."""

from __future__ import annotations

from datetime import UTC, datetime

from closeloop.contracts.directory import IdentityLinked, ResourceCatalogued
from closeloop.contracts.grants import GrantAction, GrantEvent
from closeloop.contracts.identity import EntitlementKey
from closeloop.identity import OPERATOR, Directory, Outcome, parse_rules
from closeloop.identity.catalog import parse_catalog_file

AT = datetime(2026, 5, 1, tzinfo=UTC)


def grant(principal: str, resource: str, *, aliases: tuple[str, ...] = (), name: str | None = None) -> GrantEvent:
    event: GrantEvent = GrantEvent.create(
        action=GrantAction.GRANT,
        key=EntitlementKey(principal=principal, resource=resource, privilege="member"),
        source_system=principal.split(":", 1)[0],
        principal_aliases=aliases,
        resource_name=name,
        vendor_event_id="v1",
        vendor_event_type="test",
        occurred_at=AT,
        source="test",
        correlation_id="c1",
    )
    return event


def operator_link(*names: str, identity: str) -> IdentityLinked:
    link: IdentityLinked = IdentityLinked.create(
        names=names,
        accounts=names,
        origin=OPERATOR,
        identity_id=identity,
        occurred_at=AT,
        source="t",
        correlation_id="c",
    )
    return link


def test_resource_by_exact_id_display_name_typed_name_case_and_spacing() -> None:
    d = Directory()
    d.observe(grant("okta:user:alice@example.com", "okta:group:00g1eng", name="Engineering Admins"), "t")
    by_id = d.resolve_resource("okta:group:00g1eng", "okta", "okta:group:00g1eng")
    assert (by_id.outcome, by_id.values) == (Outcome.BOUND, ("okta:group:00g1eng",))
    for written in ("Engineering Admins", "  engineering   ADMINS ", "group:Engineering Admins"):
        found = d.resolve_resource(written, "okta")
        assert (found.outcome, found.values) == (Outcome.BOUND, ("okta:group:00g1eng",)), written


def test_bare_repository_name_binds_once_a_grant_teaches_it() -> None:
    d = Directory()
    assert d.resolve_resource("acme/payments", "github").outcome is Outcome.UNRESOLVED
    taught = d.observe(grant("github:user:alice-gh", "github:repo:acme/payments"), "t")
    assert any(isinstance(t, ResourceCatalogued) for t in taught)
    assert d.resolve_resource("acme/payments", "github").values == ("github:repo:acme/payments",)
    assert d.observe(grant("github:user:alice-gh", "github:repo:acme/payments"), "t") == []  # nothing new


def test_rename_at_the_source_moves_the_name() -> None:
    d = Directory()
    d.observe(grant("okta:user:a@x.io", "okta:group:00g1", name="Payments"), "t")
    d.observe(grant("okta:user:a@x.io", "okta:group:00g1", name="Payments Team"), "t")
    assert d.resolve_resource("Payments Team", "okta").values == ("okta:group:00g1",)
    assert d.resolve_resource("Payments", "okta").outcome is Outcome.UNRESOLVED


def test_two_groups_with_one_name_are_ambiguous_never_guessed() -> None:
    d = Directory()
    d.observe(grant("okta:user:a@x.io", "okta:group:00gA", name="Finance"), "t")
    d.observe(grant("okta:user:a@x.io", "okta:group:00gB", name="finance"), "t")
    found = d.resolve_resource("Finance", "okta")
    assert found.outcome is Outcome.AMBIGUOUS
    assert found.values == ("okta:group:00gA", "okta:group:00gB")


def test_default_type_first_then_any_type() -> None:
    d = Directory()
    d.observe(grant("github:user:a", "github:team:acme/platform", name="Platform"), "t")
    d.observe(grant("github:user:a", "github:repo:acme/platform"), "t")
    assert d.resolve_resource("acme/platform", "github").values == ("github:repo:acme/platform",)
    assert d.resolve_resource("Platform", "github").values == ("github:team:acme/platform",)


def test_catalog_file_aliases_resolve() -> None:
    d = Directory()
    for resource, name, aliases in parse_catalog_file(
        {"resources": [{"id": "aws:policy:arn:aws:iam::aws:policy/ReadOnlyAccess", "aliases": ["AWS read only"]}]}
    ):
        d.catalog.learn(resource, display_name=name, aliases=aliases, origin=OPERATOR)
    assert d.resolve_resource("aws read only", "aws").values == ("aws:policy:arn:aws:iam::aws:policy/ReadOnlyAccess",)


def test_person_by_email_reaches_the_linked_account_on_the_system() -> None:
    d = Directory()
    assert d.resolve_person("alice@example.com", "github").outcome is Outcome.UNRESOLVED
    d.observe(grant("github:user:alice-gh", "github:repo:acme/x", aliases=("email:alice@example.com",)), "t")
    found = d.resolve_person("Alice@Example.com", "github")
    assert (found.outcome, found.values) == (Outcome.BOUND, ("github:user:alice-gh",))


def test_operator_link_wins_and_merges() -> None:
    d = Directory()
    d.observe(grant("github:user:alice-gh", "github:repo:acme/x", aliases=("github:userid:6202",)), "t")
    d.observe(grant("okta:user:alice@example.com", "okta:group:00g1", aliases=("email:alice@example.com",)), "t")
    d.apply(operator_link("email:alice@example.com", "github:user:alice-gh", identity="alice@example.com"))
    assert d.resolve_person("alice@example.com", "github").values == ("github:user:alice-gh",)
    assert d.graph.identity_of("github:userid:6202") == "alice@example.com"
    assert {"alice@example.com", "alice-gh"} <= d.person_ids("github:user:alice-gh")


def test_observed_conflict_is_reported_and_nothing_merges() -> None:
    d = Directory()
    d.observe(grant("okta:user:alice@example.com", "okta:group:1", aliases=("email:alice@example.com",)), "t")
    d.observe(grant("okta:user:bob@example.com", "okta:group:1", aliases=("email:bob@example.com",)), "t")
    d.observe(
        grant("github:user:shared", "github:repo:a/b", aliases=("email:alice@example.com", "email:bob@example.com")),
        "t",
    )
    assert len(d.graph.conflicts) == 1
    assert d.graph.conflicts[0].identities == ("alice@example.com", "bob@example.com")
    assert d.graph.identity_of("github:user:shared") is None
    assert d.resolve_person("bob@example.com", "okta").values == ("okta:user:bob@example.com",)
    # The conflict affects a decision: a ticket for either person on GitHub is ambiguous, never a guess.
    on_github = d.resolve_person("alice@example.com", "github")
    assert (on_github.outcome, on_github.values) == (Outcome.AMBIGUOUS, ("github:user:shared",))
    # The same record seen again is not announced again.
    assert (
        d.observe(
            grant(
                "github:user:shared", "github:repo:a/b", aliases=("email:alice@example.com", "email:bob@example.com")
            ),
            "t",
        )
        == []
    )


def test_correlation_rules_and_login_as_written() -> None:
    d = Directory(
        rules=parse_rules({"github": {"template": "github:user:{first}-acme", "match": r"(?P<first>[a-z]+)\..*"}})
    )
    assert d.resolve_person("carol.j@example.com", "github").values == ("github:user:carol-acme",)
    assert d.resolve_person("dave@example.com", "github").outcome is Outcome.UNRESOLVED
    assert Directory().resolve_person("eve@example.com", "okta").values == ("okta:user:eve@example.com",)
    assert Directory().resolve_person("Eve-GH", "github").values == ("github:user:eve-gh",)


def test_email_with_accounts_on_two_systems_stays_per_system() -> None:
    d = Directory()
    d.observe(grant("aws:user:arn:aws:iam::1:user/alice", "aws:policy:p", aliases=("email:alice@example.com",)), "t")
    d.observe(grant("github:user:alice-gh", "github:repo:a/b", aliases=("email:alice@example.com",)), "t")
    assert d.resolve_person("alice@example.com", "aws").values == ("aws:user:arn:aws:iam::1:user/alice",)
    assert d.resolve_person("alice@example.com", "github").values == ("github:user:alice-gh",)


def test_aws_user_named_by_user_name_binds_to_its_arn() -> None:
    d = Directory()
    arn = "aws:user:arn:aws:iam::123456789012:user/deploy-bot"
    d.observe(grant(arn, "aws:policy:arn:aws:iam::aws:policy/ReadOnlyAccess", aliases=("aws:user:deploy-bot",)), "t")
    found = d.resolve_person("deploy-bot", "aws", "aws:user:deploy-bot")
    assert (found.outcome, found.values) == (Outcome.BOUND, (arn,))
    policy = d.resolve_resource("ReadOnlyAccess", "aws")  # the name an ARN carries
    assert policy.values == ("aws:policy:arn:aws:iam::aws:policy/ReadOnlyAccess",)


def test_a_record_with_very_many_names_still_announces_within_the_contract() -> None:
    aliases = tuple(f"okta:user:alias{i}" for i in range(80))
    (link,) = [
        t
        for t in Directory().observe(grant("okta:user:many@x.io", "okta:group:1", aliases=aliases), "t")
        if isinstance(t, IdentityLinked)
    ]
    assert len(link.names) == 50
