from __future__ import annotations

from closeloop import topics


def test_every_design_topic_is_declared_with_its_dead_letter_topic() -> None:
    names = {spec.name for spec in topics.all_topic_specs()}
    design = {
        "itsm.tickets.v1",
        "iam.grants.v1",
        "entitlements.v1",
        "provisioning.commands.v1",
        "drift.alerts.v1",
        "itsm.raw.servicenow",
        "itsm.raw.jira",
        "itsm.raw.generic",
        *(f"iam.raw.{s}" for s in ("okta", "entra", "cloudtrail", "github", "k8s", "vault")),
    }
    assert design <= names
    for name in design:
        assert f"{name}.dlq" in names, name


def test_state_topics_are_compacted_and_kept() -> None:
    compacted = (topics.ENTITLEMENTS, topics.IDENTITY_LINKS, topics.CATALOG_RESOURCES)
    for name in compacted:
        config = next(s for s in topics.all_topic_specs() if s.name == name).config()
        assert config["cleanup.policy"] == "compact"
        assert config["retention.ms"] == "-1"
    others = [s for s in topics.all_topic_specs() if s.name not in compacted]
    assert all("cleanup.policy" not in s.config() for s in others)
