"""The OCSF Detection Finding: valid against the pinned OCSF schema (keys, required attributes, enums) and
against pydantic-ocsf's model; carries the ticket, the evidence, the controls and ATT&CK where it fits."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ocsf.v1_7_0.events import DetectionFinding

from closeloop.contracts.alerts import OCSF_VERSION, AlertActivity, DriftAlert, DriftRule, parse_alert
from closeloop.contracts.grants import GrantAction
from reconciliation.join_engine import Emission
from reconciliation.ocsf import build_finding
from reconciliation.ocsf_schema import validate_detection_finding
from reconciliation.sinks.alert_record import AlertEncoder
from tests.unit.reconciliation.harness import Harness
from tests.unit.reconciliation.scenarios import SCENARIOS, grant

BASE = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def emission_for(rule: DriftRule) -> Emission:
    harness = Harness()
    emissions = harness.play(SCENARIOS[rule](BASE, "oc", False), BASE)
    return emissions[0]


def finding(emission: Emission) -> dict[str, Any]:
    return build_finding(
        emission, version=OCSF_VERSION, product_version="0.1.0", log_name="drift.alerts.v1", data_sources=("a", "b")
    )


@pytest.mark.parametrize("rule", list(SCENARIOS))
def test_every_rules_finding_is_valid_ocsf(rule: DriftRule) -> None:
    document = finding(emission_for(rule))
    assert validate_detection_finding(document, OCSF_VERSION) == []
    model = DetectionFinding.model_validate(document)
    assert model.class_uid == 2004
    assert document["finding_info"]["types"][0] == rule.value
    assert document["finding_info"]["analytic"]["name"] == rule.value
    assert document["type_uid"] == 200401
    assert document["evidences"]
    headline = DriftAlert.from_ocsf(document)
    assert (headline.rule, headline.activity, headline.revision) == (rule, AlertActivity.CREATE, 1)


def test_close_finding_is_valid_and_resolved() -> None:
    harness = Harness()
    scenario = SCENARIOS[DriftRule.UNTICKETED_GRANT](BASE, "cl", False)
    harness.play(scenario, BASE)
    k = next(iter(harness.open_alerts()))[0]
    from closeloop.contracts.identity import EntitlementKey

    emissions = harness.feed(
        grant(EntitlementKey.parse(k), BASE + timedelta(minutes=1), action=GrantAction.REVOKE),
        BASE + timedelta(minutes=1),
    )
    document = finding(emissions[0])
    assert validate_detection_finding(document, OCSF_VERSION) == []
    assert (document["activity_id"], document["status_id"], document["status"]) == (3, 4, "Resolved")
    assert document["is_alert"] is False
    assert document["message"].startswith("Resolved:")
    assert "end_time" in document


def test_unticketed_finding_carries_grant_evidence_absence_attack_and_controls() -> None:
    document = finding(emission_for(DriftRule.UNTICKETED_GRANT))
    names = [e["name"] for e in document["evidences"]]
    assert names[0] == "grant"
    assert {"name": "ticket", "data": {"statement": "no ticket names this entitlement"}} in document["evidences"]
    assert any(e["name"] == "absence" for e in document["evidences"])
    attack = document["finding_info"]["attacks"][0]
    assert attack["technique"] == {"uid": "T1098", "name": "Account Manipulation"}
    tags = {t["name"]: t.get("values") for t in document["finding_info"]["tags"]}
    assert tags["NIST CSF 2.0"] == ["PR.AA-05"]
    assert "OWASP NHI Top 10 2025" not in tags  # a human identity
    assert document["resources"][0]["role_id"] == 1
    assert document["unmapped"]["closeloop"]["rule"] == "UNTICKETED_GRANT"


def test_ticket_object_and_owasp_mapping_for_an_nhi_finding() -> None:
    document = finding(emission_for(DriftRule.STALE_CREDENTIAL))
    assert document["tickets"][0]["uid"].startswith("RITM")
    assert document["tickets"][0]["src_url"].startswith("https://")
    assert "incident" in document["metadata"]["profiles"]
    tags = {t["name"]: t.get("values") for t in document["finding_info"]["tags"]}
    assert tags["OWASP NHI Top 10 2025"] == ["NHI7:2025 Long-Lived Secrets"]
    assert "attacks" not in document["finding_info"]  # no ATT&CK technique fits stale credentials


def test_automation_finding_names_the_actor_under_the_host_profile() -> None:
    document = finding(emission_for(DriftRule.UNREVIEWED_AUTOMATED_CHANGE))
    assert document["actor"]["user"]["uid"].startswith("okta:serviceaccount:agent-")
    assert document["actor"]["invoked_by"] == "automation"
    assert "host" in document["metadata"]["profiles"]


def test_encoded_record_round_trips_through_the_shared_contract() -> None:
    emission = emission_for(DriftRule.CLOSED_NOT_REMOVED)
    record = AlertEncoder(
        ocsf_version=OCSF_VERSION, source="closeloop/reconciliation", log_name="x", data_sources=()
    ).encode(emission)
    headline, document = parse_alert(record.value)
    assert record.key == emission.change.key.encode()
    headers = dict(record.headers)
    assert headers["ce_id"].decode() == headline.event_id == emission.change.event_id
    assert headers["ce_type"] == b"drift.alert.changed"
    assert headers["ce_subject"].decode() == emission.change.key
    assert headers["ce_rule"] == b"CLOSED_NOT_REMOVED"
    assert document["finding_info"]["uid"] == emission.change.uid


class TestValidator:
    def document(self) -> dict[str, Any]:
        return finding(emission_for(DriftRule.SCOPE_EXCEEDS_APPROVAL))

    def test_unknown_keys_are_reported_at_any_depth(self) -> None:
        document = self.document()
        document["finding_info"]["analytic"]["flavour"] = "x"
        document["resources"][0]["owner_name"] = "x"
        document["sevrity"] = "High"
        errors = validate_detection_finding(document, OCSF_VERSION)
        assert "detection_finding.sevrity: not an attribute of this OCSF 1.7.0 class/object" in errors
        assert any(e.startswith("detection_finding.finding_info.analytic.flavour") for e in errors)
        assert any(e.startswith("detection_finding.resources[0].owner_name") for e in errors)

    def test_required_attributes_enums_types_and_constraints(self) -> None:
        document = self.document()
        del document["finding_info"]["uid"]
        del document["metadata"]["product"]
        document["severity_id"] = 42
        document["time"] = "yesterday"
        document["evidences"].append({"name": "empty"})
        errors = validate_detection_finding(document, OCSF_VERSION)
        assert "detection_finding.finding_info.uid: required attribute missing" in errors
        assert "detection_finding.metadata.product: required attribute missing" in errors
        assert any(e.startswith("detection_finding.severity_id: 42 is not a defined value") for e in errors)
        assert any(e.startswith("detection_finding.time: must be long_t") for e in errors)
        assert any("needs at least one of" in e and "evidences" in e for e in errors)

    def test_profile_attributes_need_the_profile_declared(self) -> None:
        document = self.document()
        assert validate_detection_finding(document, OCSF_VERSION) == []
        undeclared = copy.deepcopy(document)
        undeclared["metadata"]["profiles"] = []
        assert (
            "detection_finding.tickets: not an attribute of this OCSF 1.7.0 class/object"
            in validate_detection_finding(undeclared, OCSF_VERSION)
        )

    def test_the_pinned_version_matters(self) -> None:
        # resource_details.role_id arrived after 1.5.0: a 1.7.0 finding is not a valid 1.5.0 one.
        errors = validate_detection_finding(self.document(), "1.5.0")
        assert "detection_finding.resources[0].role_id: not an attribute of this OCSF 1.5.0 class/object" in errors
