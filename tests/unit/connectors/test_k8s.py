"""Kubernetes audit: bindings (create / update / patch / delete via the cache), wrappers, tokens, status."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from closeloop.contracts.grants import GrantEvent, PrincipalStatusChanged
from closeloop.contracts.identity import IdentityKind
from connectors import k8s
from connectors.errors import MalformedRecord
from tests.unit.connectors.support import Runner, context, fixture, summary

CA = "k8s:clusterrole:cluster-admin"
PAY_ROLE = "k8s:role:payments/payments-editor"


def test_clusterrolebinding_create_grants_every_subject_by_kind() -> None:
    assert summary(Runner("k8s").fixture_events("crb_create")) == [
        ("grant", f"k8s:group:sre-oncall|{CA}|bound"),
        ("grant", f"k8s:serviceaccount:argocd/argocd-application-controller|{CA}|bound"),
        ("grant", f"k8s:user:oscar@acme.example|{CA}|bound"),
    ]


def test_patch_grants_added_and_revokes_dropped_subjects_then_delete_revokes_the_rest_from_the_cache() -> None:
    runner = Runner("k8s")
    runner.fixture_events("crb_create")
    assert summary(runner.fixture_events("crb_patch")) == [
        ("grant", f"k8s:serviceaccount:ci/deployer|{CA}|bound"),
        ("revoke", f"k8s:serviceaccount:argocd/argocd-application-controller|{CA}|bound"),
    ]
    assert summary(runner.fixture_events("crb_delete")) == [
        ("revoke", f"k8s:group:sre-oncall|{CA}|bound"),
        ("revoke", f"k8s:serviceaccount:ci/deployer|{CA}|bound"),
        ("revoke", f"k8s:user:oscar@acme.example|{CA}|bound"),
    ]


def test_delete_without_cached_binding_yields_nothing() -> None:
    (result,) = Runner("k8s").results(fixture("k8s", "crb_delete"))
    assert result.events == []
    assert result.skipped == "binding_not_cached"


def test_delete_arriving_before_its_create_keeps_the_late_create_from_looking_live() -> None:
    runner = Runner("k8s")
    runner.fixture_events("crb_delete")
    (result,) = runner.results(fixture("k8s", "crb_create"))
    assert result.events == []
    assert result.skipped == "binding_already_deleted"


def test_rolebinding_update_diffs_subjects_and_uses_the_namespace() -> None:
    runner = Runner("k8s")
    assert summary(runner.fixture_events("rb_create")) == [
        ("grant", f"k8s:serviceaccount:payments/payments-worker|{PAY_ROLE}|bound"),
        ("grant", f"k8s:user:pia@acme.example|{PAY_ROLE}|bound"),
    ]
    assert summary(runner.fixture_events("rb_update")) == [
        ("grant", f"k8s:user:quinn@acme.example|{PAY_ROLE}|bound"),
        ("revoke", f"k8s:user:pia@acme.example|{PAY_ROLE}|bound"),
    ]


def test_event_fields() -> None:
    (event, *_) = Runner("k8s").fixture_events("rb_create")
    assert isinstance(event, GrantEvent)
    assert event.occurred_at == datetime(2024, 11, 6, 9, 0, tzinfo=UTC)
    assert event.principal_kind is IdentityKind.SERVICE_ACCOUNT
    assert event.resource_type == "RoleBinding"
    assert event.vendor_event_type == "create rolebindings"
    assert event.details["cluster"] == "default"
    assert event.details["binding"] == "rolebindings/payments/payments-editors"
    assert event.actor is not None
    assert event.actor.id == "k8s:user:nora@acme.example"
    assert event.actor.is_automation is False


def test_aks_wrapper_with_log_as_a_json_string_names_its_cluster() -> None:
    (event,) = Runner("k8s").fixture_events("aks_wrapped_log_string")
    assert isinstance(event, GrantEvent)
    assert str(event.key) == "k8s:group:00000000-aaaa-bbbb-cccc-111111111111|k8s:clusterrole:view|bound"
    assert event.details["cluster"] == "aks-prod-weu"
    assert event.source == "k8s://aks-prod-weu"


def test_gke_protopayload_is_read_like_a_raw_event() -> None:
    (event,) = Runner("k8s").fixture_events("gke_protopayload_create")
    assert isinstance(event, GrantEvent)
    assert str(event.key) == "k8s:user:rita@acme.example|k8s:clusterrole:view|bound"
    assert event.details["cluster"] == "gke-ml-prod"
    assert event.occurred_at == datetime(2024, 11, 8, 7, 30, 0, 123456, tzinfo=UTC)


def test_webhook_eventlist_uses_only_response_complete() -> None:
    results = Runner("k8s").results(fixture("k8s", "webhook_eventlist"))
    assert [r.skipped for r in results] == ["not_response_complete", None]
    assert summary(results[1].events) == [("grant", "k8s:group:qa-team|k8s:clusterrole:view|bound")]


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("crb_create_forbidden", "failed_operation"),
        ("crb_create_metadata_level", "binding_subjects_not_logged"),
        ("crb_create_request_received_stage", "not_response_complete"),
        ("clusterrole_create", "role_definition"),
        ("token_request_kubelet", "routine_token_request"),
        ("opaque_secret_create", "not_a_grant_event"),
    ],
)
def test_records_that_are_not_grants(name: str, why: str) -> None:
    (result,) = Runner("k8s").results(fixture("k8s", name))
    assert result.events == []
    assert result.skipped == why


def test_token_request_is_a_credential_grant_with_expiry() -> None:
    (event,) = Runner("k8s").fixture_events("token_request")
    assert isinstance(event, GrantEvent)
    assert str(event.key) == "k8s:serviceaccount:ci/release-bot|k8s:tokenrequest:ci/release-bot|token"
    assert event.expires_at == datetime(2024, 11, 10, 16, 0, tzinfo=UTC)
    assert event.credential is not None
    assert event.credential.credential_type == "k8s_token_request"


def test_token_secret_create_and_delete() -> None:
    runner = Runner("k8s")
    key = "k8s:serviceaccount:ci/release-bot|k8s:secret:ci/release-bot-token|token"
    assert summary(runner.fixture_events("token_secret_create")) == [("grant", key)]
    assert summary(runner.fixture_events("token_secret_delete")) == [("revoke", key)]


def test_service_account_lifecycle_is_principal_status() -> None:
    (created,) = Runner("k8s").fixture_events("sa_create")
    (deleted,) = Runner("k8s").fixture_events("sa_delete")
    assert isinstance(created, PrincipalStatusChanged)
    assert created.status.value == "active"
    assert isinstance(deleted, PrincipalStatusChanged)
    assert deleted.status.value == "deleted"
    assert deleted.principal == "k8s:serviceaccount:ci/release-bot"


def test_system_controller_actor_is_automation() -> None:
    (event,) = Runner("k8s").fixture_events("controller_binding_update")
    assert event.actor is not None
    assert event.actor.is_automation is True


def test_configured_cluster_name_is_used_for_unlabelled_events() -> None:
    (event, *_) = k8s.parse(fixture("k8s", "crb_create"), context(k8s_cluster="eks-prod"))
    assert isinstance(event, GrantEvent)
    assert event.source == "k8s://eks-prod"


def test_event_without_verb_is_malformed() -> None:
    with pytest.raises(MalformedRecord):
        k8s.normalize({"kind": "Event", "objectRef": {"resource": "pods"}})


def test_aks_log_that_is_not_json_is_malformed() -> None:
    record = fixture("k8s", "aks_wrapped_log_string")
    record["properties"]["log"] = "I1107 08:00:00 klog line, not an audit event"
    with pytest.raises(MalformedRecord, match=r"properties\.log"):
        k8s.normalize(record)
