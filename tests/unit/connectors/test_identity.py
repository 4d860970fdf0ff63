"""Identity kinds and automation from vendor kind plus configurable name patterns."""

from __future__ import annotations

import pytest

from closeloop.contracts.identity import IdentityKind
from connectors.identity import DEFAULT_CLASSIFIER, IdentityClassifier, email_alias


@pytest.mark.parametrize(
    ("names", "kind"),
    [
        (("dependabot[bot]",), IdentityKind.BOT),
        (("renovate",), IdentityKind.BOT),
        (("release-bot",), IdentityKind.BOT),
        (("svc-terraform",), IdentityKind.SERVICE_ACCOUNT),
        (("github-actions-deployer",), IdentityKind.SERVICE_ACCOUNT),
        (("ci-runner@acme.example",), IdentityKind.SERVICE_ACCOUNT),
        (("system:kube-controller-manager",), IdentityKind.SERVICE_ACCOUNT),
        (("homelab-agentic-mgmt",), IdentityKind.AI_AGENT),
        (("claude-code",), IdentityKind.AI_AGENT),
        (("support-ai-agent",), IdentityKind.AI_AGENT),
        (("alice@acme.example",), None),
        (("priscilla.decker@acme.example",), None),  # "ci" inside a word is not a CI identity
        (("elastic-agent",), None),  # a monitoring agent is not an AI agent
    ],
)
def test_names_map_to_kinds(names: tuple[str, ...], kind: IdentityKind | None) -> None:
    assert DEFAULT_CLASSIFIER.kind_from_names(names) is kind


def test_patterns_refine_human_but_not_other_vendor_kinds_except_ai_agents() -> None:
    assert DEFAULT_CLASSIFIER.kind(IdentityKind.HUMAN, "svc-backup") is IdentityKind.SERVICE_ACCOUNT
    assert DEFAULT_CLASSIFIER.kind(IdentityKind.APPLICATION, "svc-backup") is IdentityKind.APPLICATION
    assert DEFAULT_CLASSIFIER.kind(IdentityKind.APPLICATION, "copilot-reviewer") is IdentityKind.AI_AGENT


def test_actor_is_automation_when_non_human_or_when_the_vendor_says_so() -> None:
    human = DEFAULT_CLASSIFIER.actor("okta:user:alice@acme.example", "Alice", IdentityKind.HUMAN)
    bot = DEFAULT_CLASSIFIER.actor("github:user:x", "deploy-bot", IdentityKind.HUMAN)
    flagged = DEFAULT_CLASSIFIER.actor("x", "y", IdentityKind.UNKNOWN, vendor_automation=True)
    assert human is not None
    assert human.is_automation is False
    assert bot is not None
    assert bot.is_automation is True
    assert bot.kind is IdentityKind.BOT
    assert flagged is not None
    assert flagged.is_automation is True
    assert DEFAULT_CLASSIFIER.actor(None, None, IdentityKind.HUMAN) is None


def test_patterns_are_configurable() -> None:
    classifier = IdentityClassifier.from_patterns(agent=[r"^agent-"], bot=[], service=[r"^robot\."])
    assert classifier.kind_from_names(["agent-7"]) is IdentityKind.AI_AGENT
    assert classifier.kind_from_names(["robot.deploy"]) is IdentityKind.SERVICE_ACCOUNT
    assert classifier.kind_from_names(["dependabot[bot]"]) is None


def test_email_aliases_are_lower_case() -> None:
    assert email_alias("Alice@Acme.Example", "not-an-email", None) == ["email:alice@acme.example"]
