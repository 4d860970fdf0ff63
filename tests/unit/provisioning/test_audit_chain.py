"""The hash chain, checked on rows in memory: any edit, deletion, insertion or reordering is found at
the first broken position."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from closeloop.record.audit import GENESIS_HASH, AuditRow, canonical_json, chain_hash, check_rows, row_hash

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def chain(length: int) -> list[AuditRow]:
    rows, prev = [], GENESIS_HASH
    for seq in range(1, length + 1):
        fields = {
            "seq": seq,
            "recorded_at": T0 + timedelta(seconds=seq),
            "entity_type": "entitlement",
            "entity_key": f"okta:user:u{seq}@example.com|okta:group:00g1|member",
            "action": "requested",
            "actor": "provisioning",
            "cause_event_id": f"evt-{seq}",
            "correlation_id": f"corr-{seq}",
            "payload": {"record": {"status": "pending", "owner": "ø-unicode"}, "n": seq},
            "prev_hash": prev,
        }
        digest = chain_hash(**fields)  # type: ignore[arg-type]
        rows.append(AuditRow(hash=digest, **fields))  # type: ignore[arg-type]
        prev = digest
    return rows


def test_canonical_json_is_key_order_independent() -> None:
    assert canonical_json({"b": 1, "a": [1, {"d": 2, "c": None}]}) == canonical_json(
        {"a": [1, {"c": None, "d": 2}], "b": 1}
    )
    assert canonical_json({"x": "é"}) == '{"x":"é"}'.encode()


def test_intact_chain_verifies() -> None:
    report = check_rows(chain(5))
    assert report.ok
    assert (report.rows_checked, report.head_seq) == (5, 5)
    assert report.head_hash == chain(5)[-1].hash


def test_time_in_another_offset_hashes_the_same() -> None:
    rows = chain(2)
    shifted = dataclasses.replace(
        rows[0], recorded_at=rows[0].recorded_at.astimezone(datetime.now().astimezone().tzinfo)
    )
    assert check_rows([shifted, rows[1]]).ok


def test_edit_is_found_at_the_edited_row() -> None:
    rows = chain(5)
    rows[2] = dataclasses.replace(rows[2], payload={"record": {"status": "active"}, "n": 3})
    report = check_rows(rows)
    assert not report.ok
    assert report.first_broken_seq == 3
    assert "edited" in (report.problem or "")


def test_edit_with_a_recomputed_hash_is_found_at_the_next_row() -> None:
    rows = chain(5)
    forged = dataclasses.replace(rows[2], actor="mallory")
    rows[2] = dataclasses.replace(forged, hash=row_hash(forged))
    report = check_rows(rows)
    assert report.first_broken_seq == 4
    assert "does not link" in (report.problem or "")


def test_deletion_is_found_at_the_missing_seq() -> None:
    rows = chain(5)
    del rows[1]
    report = check_rows(rows)
    assert report.first_broken_seq == 2
    assert "missing" in (report.problem or "")


def test_insertion_is_found() -> None:
    rows = chain(5)
    intruder = dataclasses.replace(rows[1], seq=3, action="activated")
    shifted = [rows[0], rows[1], intruder] + [dataclasses.replace(r, seq=r.seq + 1) for r in rows[2:]]
    report = check_rows(shifted)
    assert not report.ok
    assert report.first_broken_seq == 3


def test_reordering_is_found() -> None:
    rows = chain(5)
    swapped = [*rows[:1], dataclasses.replace(rows[2], seq=2), dataclasses.replace(rows[1], seq=3), *rows[3:]]
    report = check_rows(swapped)
    assert not report.ok
    assert report.first_broken_seq == 2


def test_continuation_from_a_checkpoint() -> None:
    rows = chain(6)
    assert check_rows(rows[3:], start_seq=4, start_prev=rows[2].hash).ok
    assert not check_rows(rows[3:], start_seq=4, start_prev=GENESIS_HASH).ok
