"""Signed checkpoints of the audit chain head, kept outside the database.

The hash chain shows that rows were changed unless whoever changed them recomputed every later hash and
the head, which the schema owner can do. A checkpoint is the head (chain id, seq, hash) at some moment,
signed with HMAC-SHA256 under a key the database never sees, appended as one JSON line to a file (point
it at storage the database host cannot rewrite: another host, a WORM bucket mount). Verifying the chain
against every checkpoint of its chain id finds a consistent rewrite or a truncation of anything up to the
latest checkpoint, so the window in which a rewrite of the tail can go unnoticed is the checkpoint
interval.

Every line signed with the configured key must verify; a line signed with another key (a rotated one)
is skipped and counted. The writer verifies the rows appended since its last checkpoint before it signs,
so it never signs over a broken chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from closeloop.logging import get_logger
from closeloop.record.audit import GENESIS_HASH, ChainReport, canonical_json, snapshot, verify_chain
from closeloop.settings import AuditSettings

MIN_KEY_BYTES = 32
log = get_logger(__name__)


class CheckpointError(ValueError):
    """The checkpoint key or file is unusable, or the file holds a checkpoint that does not verify."""


@dataclass(frozen=True)
class Checkpoint:
    chain_id: str
    seq: int
    hash: str
    signed_at: datetime
    key_id: str  # which key signed it (a digest of the key, never the key)
    mac: str = ""

    def message(self) -> bytes:
        return canonical_json(
            {
                "v": 1,
                "chain_id": self.chain_id,
                "seq": self.seq,
                "hash": self.hash,
                "signed_at": self.signed_at.astimezone(UTC).isoformat(),
                "key_id": self.key_id,
            }
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "chain_id": self.chain_id,
                "seq": self.seq,
                "hash": self.hash,
                "signed_at": self.signed_at.astimezone(UTC).isoformat(),
                "key_id": self.key_id,
                "mac": self.mac,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, line: str) -> Checkpoint:
        try:
            data = json.loads(line)
            if not isinstance(data, dict) or set(data) != {"chain_id", "seq", "hash", "signed_at", "key_id", "mac"}:
                raise ValueError("unexpected fields")
            seq = data["seq"]
            if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
                raise ValueError("seq must be a non-negative integer")
            texts = [data[k] for k in ("chain_id", "hash", "signed_at", "key_id", "mac")]
            if not all(isinstance(t, str) for t in texts):
                raise ValueError("chain_id, hash, signed_at, key_id and mac must be strings")
            return cls(
                chain_id=data["chain_id"],
                seq=seq,
                hash=data["hash"],
                signed_at=datetime.fromisoformat(data["signed_at"]),
                key_id=data["key_id"],
                mac=data["mac"],
            )
        except (ValueError, TypeError, OverflowError) as exc:  # JSONDecodeError is a ValueError
            raise CheckpointError(f"not a checkpoint line: {exc}") from exc


@dataclass(frozen=True)
class CheckpointKey:
    """The HMAC key. Never stored in the database; loaded from a file only the checkpoint writer and
    the verifier can read."""

    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_KEY_BYTES:
            raise CheckpointError(f"the checkpoint key must be at least {MIN_KEY_BYTES} bytes")

    def __repr__(self) -> str:
        return f"CheckpointKey(key_id={self.key_id})"

    @classmethod
    def load(cls, path: Path) -> CheckpointKey:
        """A key file holds the key as hex (64+ characters) on one line."""
        try:
            text = path.read_text().strip()
        except OSError as exc:
            raise CheckpointError(f"cannot read the checkpoint key file {path}: {exc.strerror}") from exc
        try:
            return cls(bytes.fromhex(text))
        except ValueError as exc:
            raise CheckpointError(f"the checkpoint key file {path} must hold the key as hex") from exc

    @property
    def key_id(self) -> str:
        return hashlib.sha256(b"closeloop-audit-checkpoint-key\0" + self.secret).hexdigest()[:16]

    def _mac(self, checkpoint: Checkpoint) -> str:
        return hmac.new(self.secret, checkpoint.message(), hashlib.sha256).hexdigest()

    def sign(self, chain_id: str, seq: int, head_hash: str, signed_at: datetime) -> Checkpoint:
        unsigned = Checkpoint(chain_id=chain_id, seq=seq, hash=head_hash, signed_at=signed_at, key_id=self.key_id)
        return Checkpoint(**{**unsigned.__dict__, "mac": self._mac(unsigned)})

    def verifies(self, checkpoint: Checkpoint) -> bool:
        return checkpoint.key_id == self.key_id and hmac.compare_digest(self._mac(checkpoint), checkpoint.mac)


@dataclass(frozen=True)
class CheckpointLog:
    """An append-only file of checkpoints, one JSON line each."""

    path: Path

    def append(self, checkpoint: Checkpoint) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (checkpoint.to_json() + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self, key: CheckpointKey, chain_id: str) -> tuple[list[Checkpoint], int]:
        """The checkpoints of `chain_id` signed with `key`, oldest first, and how many lines another key
        signed. A line signed with `key` that does not verify, or that does not parse, is an error."""
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return [], 0
        except OSError as exc:
            raise CheckpointError(f"cannot read the checkpoint file {self.path}: {exc.strerror}") from exc
        found: list[Checkpoint] = []
        other_keys = 0
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                checkpoint = Checkpoint.from_json(line)
            except CheckpointError as exc:
                raise CheckpointError(f"{self.path} line {number}: {exc}") from exc
            if checkpoint.key_id != key.key_id:
                other_keys += 1
                continue
            if not key.verifies(checkpoint):
                raise CheckpointError(f"{self.path} line {number}: the signature does not verify (forged checkpoint)")
            if checkpoint.chain_id == chain_id:
                found.append(checkpoint)
        return found, other_keys


def anchors_of(checkpoints: list[Checkpoint]) -> dict[int, str] | ChainReport:
    """seq -> hash of every checkpoint; two different hashes for one seq is itself a broken chain."""
    anchors: dict[int, str] = {}
    for checkpoint in checkpoints:
        if anchors.setdefault(checkpoint.seq, checkpoint.hash) != checkpoint.hash:
            return ChainReport(
                ok=False,
                rows_checked=0,
                head_seq=0,
                head_hash=GENESIS_HASH,
                first_broken_seq=checkpoint.seq,
                problem=f"two signed checkpoints disagree on seq {checkpoint.seq}",
            )
    return anchors


async def chain_id(conn: asyncpg.Connection) -> str:
    value = await conn.fetchval("SELECT chain_id FROM audit_chain_head WHERE id = 1")
    if value is None:
        raise CheckpointError("the chain head row is missing")
    return str(value)


async def verify_against_checkpoints(
    conn: asyncpg.Connection,
    key: CheckpointKey,
    checkpoints: CheckpointLog,
    *,
    expect: tuple[int, str] | None = None,
) -> ChainReport:
    """The whole chain, checked against every signed checkpoint of it; at least one is required."""
    async with snapshot(conn):
        this_chain = await chain_id(conn)
        found, _ = checkpoints.read(key, this_chain)
        if not found:
            report = await verify_chain(conn, expect=expect)
            return ChainReport(
                **{
                    **report.__dict__,
                    "ok": False,
                    "first_broken_seq": report.first_broken_seq or 1,
                    "problem": report.problem or f"no signed checkpoint of chain {this_chain} in {checkpoints.path}",
                }
            )
        anchors = anchors_of(found)
        if isinstance(anchors, ChainReport):
            return anchors
        return await verify_chain(conn, anchors=anchors, expect=expect)


async def write_checkpoint(
    conn: asyncpg.Connection,
    key: CheckpointKey,
    checkpoints: CheckpointLog,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Checkpoint:
    """Verify the rows appended since the latest checkpoint, then sign the head and append it.

    Raises CheckpointError (and signs nothing) when the chain does not continue the latest checkpoint.
    """
    async with snapshot(conn):
        this_chain = await chain_id(conn)
        found, _ = checkpoints.read(key, this_chain)
        latest = max(found, key=lambda c: c.seq, default=None)
        since = (latest.seq, latest.hash) if latest is not None else None
        report = await verify_chain(conn, since=since)
        if not report.ok:
            raise CheckpointError(f"not signing a broken chain: seq {report.first_broken_seq}: {report.problem}")
    checkpoint = key.sign(this_chain, report.head_seq, report.head_hash, clock())
    checkpoints.append(checkpoint)
    return checkpoint


async def checkpoint_forever(
    pool: asyncpg.Pool, key: CheckpointKey, checkpoints: CheckpointLog, interval_s: float, stop: asyncio.Event
) -> None:
    """Write a checkpoint now and every `interval_s` until `stop`; a failure is logged and retried."""
    last: tuple[int, str] | None = None
    while not stop.is_set():
        try:
            async with pool.acquire() as conn:
                head = await conn.fetchrow("SELECT seq, hash FROM audit_chain_head WHERE id = 1")
                if head is not None and (head["seq"], head["hash"]) != last:
                    checkpoint = await write_checkpoint(conn, key, checkpoints)
                    last = (checkpoint.seq, checkpoint.hash)
                    log.info("audit checkpoint signed", seq=checkpoint.seq, chain_id=checkpoint.chain_id)
        except (CheckpointError, OSError, asyncpg.PostgresError) as exc:
            log.error("audit checkpoint failed", error=str(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)


def from_settings(settings: AuditSettings) -> tuple[CheckpointKey, CheckpointLog] | None:
    """The key and the checkpoint file the settings name; None when checkpoints are not configured."""
    if settings.checkpoint_key_file is None:
        return None
    key = CheckpointKey.load(settings.checkpoint_key_file)
    path = settings.checkpoint_file or settings.checkpoint_key_file.with_name("audit-checkpoints.jsonl")
    return key, CheckpointLog(path)
