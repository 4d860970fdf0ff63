"""Routing by principal, the deadline index, the unit of work, join records, settings, and alert contract helpers."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka.partitioner import DefaultPartitioner
from pydantic import ValidationError

from closeloop.contracts.alerts import DriftRule, alert_event_id, finding_uid, parse_alert
from closeloop.contracts.grants import PrincipalStatus, SnapshotPhase
from closeloop.contracts.ticket_interpretation import interpret
from closeloop.contracts.tickets import TicketKind, TicketTransition
from reconciliation.continuity import Continuity, Verdict
from reconciliation.deadlines import DeadlineIndex
from reconciliation.join_engine import new_state
from reconciliation.join_records import BadJoinRecord, decode_join_record, forward_headers, tick_record
from reconciliation.routing import partition_for, route
from reconciliation.settings import ReconciliationSettings
from reconciliation.store import ENTITLEMENTS, MemoryTables, UnitOfWork
from tests.unit.reconciliation.scenarios import grant, key, marker, status, ticket

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
K = key("okta:user:dan@example.com", "okta:group:00gdev", "member")


@pytest.mark.parametrize("principal", ["okta:user:a@example.com", "aws:role:arn:aws:iam::1:role/x", "github:user:z"])
def test_partition_matches_the_kafka_default_partitioner(principal: str) -> None:
    for partitions in (1, 3, 12):
        expected = DefaultPartitioner()(principal.encode(), list(range(partitions)), list(range(partitions)))
        assert partition_for(principal, partitions) == expected


def test_every_input_routes_by_principal_markers_and_person_tickets_broadcast() -> None:
    assert route(grant(K, T0)).principal == K.principal
    assert route(status(K.principal, T0, PrincipalStatus.DELETED)).principal == K.principal
    assert route(marker("s", SnapshotPhase.STARTED, T0, "okta:*:*")).broadcast
    assert route(ticket(K, TicketTransition.APPROVED, T0, ticket_id="t")).principal == K.principal
    person = ticket(
        None,
        TicketTransition.CLOSED_COMPLETE,
        T0,
        ticket_id="o",
        kind=TicketKind.OFFBOARDING,
        requested_for="Dan@Example.com",
    )
    assert route(person).broadcast
    assert interpret(person).beneficiary.person == "dan@example.com"
    nobody = ticket(None, TicketTransition.APPROVED, T0, ticket_id="n", requested_for=None)
    assert route(nobody).skip_reason == "ticket names no principal"


def test_ticket_principal_and_key_from_canonical_or_bare_names() -> None:
    bare = ticket(K, TicketTransition.APPROVED, T0, ticket_id="t", requested_for="Dan@Example.com").model_copy(
        update={"entitlement": None}
    )
    meaning = interpret(bare)
    assert meaning.beneficiary.principal == "okta:user:dan@example.com"
    assert meaning.entitlement == K


def test_deadline_index_pops_due_owned_keys_once_and_re_arms_them() -> None:
    index = DeadlineIndex()
    index.arm("a", T0, 0)
    index.arm("b", T0 + timedelta(seconds=5), 1)
    index.arm("c", T0, 2)
    index.arm("a", T0 + timedelta(seconds=1), 0)  # superseded
    assert index.pop_due(T0, {0, 1}, timedelta(seconds=30)) == []  # a moved on; c is not ours
    assert index.pop_due(T0 + timedelta(seconds=1), {0, 1}, timedelta(seconds=30)) == [("a", 0)]
    assert index.pop_due(T0 + timedelta(seconds=2), {0, 1}, timedelta(seconds=30)) == []  # re-armed, not due yet
    assert index.pop_due(T0 + timedelta(seconds=32), {0, 1}, timedelta(seconds=30)) == [("b", 1), ("a", 0)]
    index.arm("b", None, 1)
    assert "b" not in [k for k, _ in index.pop_due(T0 + timedelta(days=1), {0, 1}, timedelta(seconds=30))]


def test_unit_of_work_collects_writes_per_partition_and_rolls_back_one_input() -> None:
    tables = MemoryTables()
    uow = UnitOfWork(tables, 3)
    uow.put_entitlement(new_state(str(K)))
    savepoint = uow.savepoint()
    other = key("okta:user:eve@example.com", "okta:group:00gdev", "member")
    uow.put_entitlement(new_state(str(other)))
    uow.rollback(savepoint)
    assert uow.entitlement(str(other)) is None
    writes = uow.writes()
    assert [(w.table, w.key, w.partition) for w in writes] == [(ENTITLEMENTS, str(K), partition_for(K.principal, 3))]
    tables.apply(writes)
    assert list(UnitOfWork(tables, 3).entitlement_keys(partition_for(K.principal, 3))) == [str(K)]


def test_join_records_round_trip_and_reject_garbage() -> None:
    event = grant(K, T0)
    headers = forward_headers("event", "iam.grants.v1", 2, 17, [("ce_id", b"1"), ("cl_kind", b"spoofed")])
    item = decode_join_record(event.model_dump_json().encode(), headers, 1)
    assert (item.kind, item.partition, item.event) == ("event", 1, event)
    value, tick_headers = tick_record([str(K)])
    assert decode_join_record(value, tick_headers, 0).tick_keys == (str(K),)
    with pytest.raises(BadJoinRecord):
        decode_join_record(b"{}", [("cl_kind", b"nonsense")], 0)
    with pytest.raises(BadJoinRecord):
        decode_join_record(b"not json", [("cl_kind", b"event")], 0)


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOSELOOP_RECONCILIATION_PRIVILEGE_ORDER", json.dumps([["Read", "Write"]]))
    monkeypatch.setenv("CLOSELOOP_RECONCILIATION_CLOSED_REMOVAL_GRACE", "PT20M")
    monkeypatch.setenv("CLOSELOOP_RECONCILIATION_CREDENTIAL_MAX_AGE", "P30D")
    monkeypatch.setenv("CLOSELOOP_ALERTS_WEBHOOK_SECRET", "whsec_" + base64.b64encode(b"k" * 32).decode())
    settings = ReconciliationSettings()
    assert settings.privilege_order == (("read", "write"),)
    assert settings.closed_removal_grace == timedelta(minutes=20)
    assert settings.credential_max_age == timedelta(days=30)
    assert settings.webhook_secret is not None
    assert settings.webhook_secret.get_secret_value() == "whsec_" + base64.b64encode(b"k" * 32).decode()
    assert settings.ops_port == 8484
    monkeypatch.setenv("CLOSELOOP_RECONCILIATION_PRIVILEGE_ORDER", json.dumps([["read"]]))
    with pytest.raises(ValidationError):
        ReconciliationSettings()


def test_alert_ids_and_parse_errors() -> None:
    uid = finding_uid(str(K), DriftRule.NO_EXPIRY)
    assert uid == finding_uid(str(K), "NO_EXPIRY")
    assert alert_event_id(uid, 1, 1) != alert_event_id(uid, 1, 2)
    for value, reason in (
        (b"nope", "not a closeloop drift alert"),
        (b"{}", "not an OCSF Detection Finding"),
        (b'{"class_uid": 2004}', "KeyError"),
    ):
        with pytest.raises(ValueError, match=reason):
            parse_alert(value)


def test_continuity_finds_holes_and_duplicates_per_partition_and_generation() -> None:
    continuity = Continuity()
    assert continuity.start_generation(1)
    tp = ("iam.grants.v1", 0)
    assert continuity.unknown({tp}) == {tp}
    continuity.learn(tp, committed=24, first_seen=24)
    assert continuity.check(tp, 24) == (Verdict.NEXT, 24)
    continuity.advance(tp, 24)
    assert continuity.check(tp, 24) == (Verdict.DUPLICATE, 25)
    assert continuity.check(tp, 38) == (Verdict.HOLE, 25)
    continuity.advance(tp, 38)
    assert continuity.check(tp, 39) == (Verdict.NEXT, 39)
    assert not continuity.start_generation(1)
    assert continuity.start_generation(2)
    assert continuity.unknown({tp}) == {tp}
    other = ("iam.grants.v1", 1)
    continuity.learn(other, committed=None, first_seen=7)
    assert continuity.check(other, 7) == (Verdict.NEXT, 7)
