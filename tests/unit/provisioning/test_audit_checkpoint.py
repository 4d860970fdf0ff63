"""Signed checkpoints of the audit chain head: only the key holder can write one that verifies, and a
checkpoint file that was tampered with is refused rather than trusted."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from closeloop.record.checkpoint import (
    Checkpoint,
    CheckpointError,
    CheckpointKey,
    CheckpointLog,
    anchors_of,
    from_settings,
)
from closeloop.settings import AuditSettings, DatabaseSettings

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CHAIN = "7b0c1f0e-0000-4000-8000-000000000001"


def key() -> CheckpointKey:
    return CheckpointKey(secrets.token_bytes(32))


def test_a_signed_checkpoint_round_trips_and_verifies(tmp_path: Path) -> None:
    k, log = key(), CheckpointLog(tmp_path / "cp.jsonl")
    log.append(k.sign(CHAIN, 5, "a" * 64, AT))
    log.append(k.sign("another-chain", 9, "b" * 64, AT))
    log.append(k.sign(CHAIN, 7, "c" * 64, AT))
    found, other_keys = log.read(k, CHAIN)
    assert [(c.seq, c.hash) for c in found] == [(5, "a" * 64), (7, "c" * 64)]
    assert other_keys == 0
    assert anchors_of(found) == {5: "a" * 64, 7: "c" * 64}


@pytest.mark.parametrize("field", ["seq", "hash", "chain_id", "signed_at"])
def test_an_edited_checkpoint_line_is_refused(tmp_path: Path, field: str) -> None:
    k, path = key(), tmp_path / "cp.jsonl"
    CheckpointLog(path).append(k.sign(CHAIN, 5, "a" * 64, AT))
    data = json.loads(path.read_text())
    data[field] = {"seq": 6, "hash": "b" * 64, "chain_id": "x", "signed_at": "2026-03-03T00:00:00+00:00"}[field]
    path.write_text(json.dumps(data) + "\n")
    with pytest.raises(CheckpointError, match="does not verify"):
        CheckpointLog(path).read(k, CHAIN)


def test_a_checkpoint_signed_with_another_key_is_skipped_not_trusted(tmp_path: Path) -> None:
    mine, theirs, log = key(), key(), CheckpointLog(tmp_path / "cp.jsonl")
    log.append(theirs.sign(CHAIN, 5, "f" * 64, AT))
    found, other_keys = log.read(mine, CHAIN)
    assert (found, other_keys) == ([], 1)
    # Claiming the real key's id without the key does not help either.
    forged = Checkpoint(**{**theirs.sign(CHAIN, 5, "f" * 64, AT).__dict__, "key_id": mine.key_id})
    log.append(forged)
    with pytest.raises(CheckpointError, match="does not verify"):
        log.read(mine, CHAIN)


@pytest.mark.parametrize(
    "line",
    [
        "not json",
        "[]",
        '{"seq": 1}',
        json.dumps({"chain_id": 1, "seq": -1, "hash": "", "signed_at": "", "key_id": "", "mac": ""}),
    ],
)
def test_a_line_that_is_not_a_checkpoint_is_an_error(tmp_path: Path, line: str) -> None:
    path = tmp_path / "cp.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(CheckpointError, match="line 1"):
        CheckpointLog(path).read(key(), CHAIN)


def test_disagreeing_checkpoints_are_a_broken_chain() -> None:
    k = key()
    report = anchors_of([k.sign(CHAIN, 5, "a" * 64, AT), k.sign(CHAIN, 5, "b" * 64, AT)])
    assert not isinstance(report, dict)
    assert (report.ok, report.first_broken_seq) == (False, 5)


def test_keys_are_long_and_never_shown(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="at least 32 bytes"):
        CheckpointKey(b"short")
    secret = secrets.token_bytes(32)
    assert secret.hex() not in repr(CheckpointKey(secret))
    (tmp_path / "key").write_text("not hex")
    with pytest.raises(CheckpointError, match="as hex"):
        CheckpointKey.load(tmp_path / "key")
    with pytest.raises(CheckpointError, match="cannot read"):
        CheckpointKey.load(tmp_path / "missing")


def test_settings_name_the_key_and_the_file(tmp_path: Path) -> None:
    assert from_settings(AuditSettings(checkpoint_key_file=None)) is None
    (tmp_path / "key").write_text(secrets.token_hex(32))
    configured = from_settings(AuditSettings(checkpoint_key_file=tmp_path / "key", checkpoint_file=None))
    assert configured is not None
    assert configured[1].path == tmp_path / "audit-checkpoints.jsonl"


def test_each_service_gets_its_own_database_role_when_configured() -> None:
    shared = SecretStr("postgresql://closeloop_app@db/closeloop")
    own = SecretStr("postgresql://closeloop_expiry@db/closeloop")
    settings = DatabaseSettings(url=shared, expiry_url=own, intake_url=SecretStr(""), connectors_url=None)
    assert settings.for_service("expiry").url == own
    assert settings.for_service("intake").url == shared  # empty means none
    assert settings.for_service("connectors").url == shared
