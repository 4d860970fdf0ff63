"""Connector settings: env prefix, topic names, validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from connectors.bootstrap import context_factory, topic_specs
from connectors.settings import ConnectorsSettings


def test_env_prefix_and_topics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOSELOOP_CONNECTORS_GRANTS_TOPIC", "t1.iam.grants.v1")
    monkeypatch.setenv("CLOSELOOP_CONNECTORS_RAW_TOPIC_PREFIX", "t1.iam.raw.")
    monkeypatch.setenv("CLOSELOOP_CONNECTORS_SOURCES", '["okta", "k8s"]')
    monkeypatch.setenv("CLOSELOOP_CONNECTORS_OKTA_ORG", "acme.okta.com")
    settings = ConnectorsSettings()
    assert settings.grants_topic == "t1.iam.grants.v1"
    assert settings.raw_topic("okta") == "t1.iam.raw.okta"
    assert settings.ops_port == 8481
    names = {spec.name for spec in topic_specs(settings)}
    assert names == {
        "t1.iam.grants.v1",
        "t1.iam.grants.v1.dlq",
        "t1.iam.raw.okta",
        "t1.iam.raw.okta.dlq",
        "t1.iam.raw.k8s",
        "t1.iam.raw.k8s.dlq",
    }
    assert context_factory(settings).okta_org == "acme.okta.com"


def test_unknown_source_is_rejected() -> None:
    with pytest.raises(ValidationError, match="unknown sources"):
        ConnectorsSettings(sources=["okta", "ldap"])


def test_secrets_are_not_shown() -> None:
    settings = ConnectorsSettings(hook_secret="very-secret-value-0123456789", okta_secret="another-secret-0123456789ab")
    assert "very-secret-value-0123456789" not in repr(settings)
    assert "another-secret-0123456789ab" not in str(settings.model_dump())
