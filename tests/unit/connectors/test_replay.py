"""Replay files: JSON lines, JSON arrays, single documents (CloudTrail S3), gzip, bad lines, progress."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from connectors.replay import iter_file, replay_file
from tests.unit.connectors.memory import memory_ingestion
from tests.unit.connectors.support import fixture


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_json_lines(tmp_path: Path) -> None:
    lines = [fixture("github", "org_add_member"), fixture("github", "team_add_member")]
    path = write(tmp_path / "audit.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    items = list(iter_file(path))
    assert [i.body for i in items] == lines
    assert items[0].position < items[-1].position <= path.stat().st_size


def test_pretty_printed_single_document_is_read_whole(tmp_path: Path) -> None:
    path = write(tmp_path / "ct.json", json.dumps(fixture("cloudtrail", "s3_delivery_records"), indent=2))
    (item,) = iter_file(path)
    assert item.error is None
    assert len(item.body["Records"]) == 3


def test_json_array(tmp_path: Path) -> None:
    path = write(tmp_path / "page.json", json.dumps(fixture("github", "api_page"), indent=1))
    (item,) = iter_file(path)
    assert isinstance(item.body, list)
    assert len(item.body) == 3


def test_gzip(tmp_path: Path) -> None:
    path = tmp_path / "111122223333_CloudTrail_us-east-1_20241015T0830Z_x.json.gz"
    path.write_bytes(gzip.compress(json.dumps(fixture("cloudtrail", "s3_delivery_records")).encode()))
    (item,) = iter_file(path)
    assert len(item.body["Records"]) == 3


def test_bad_lines_are_reported_not_fatal(tmp_path: Path) -> None:
    path = write(tmp_path / "mixed.jsonl", json.dumps(fixture("github", "org_add_member")) + "\n{oops\n")
    good, bad = iter_file(path)
    assert good.error is None
    assert bad.error is not None
    assert "line 2" in bad.error
    assert bad.raw == b"{oops"


async def test_replay_publishes_dead_letters_and_reports_progress(tmp_path: Path) -> None:
    mem = memory_ingestion()
    bodies = [fixture("okta", "event_hook_delivery"), fixture("okta", "group_membership_remove")]
    path = write(tmp_path / "okta.jsonl", "\n".join(json.dumps(b) for b in bodies) + "\nnot json\n")
    seen: list[tuple[int, int | None]] = []
    summary = await replay_file(mem.ingest, "okta", path, batch_size=2, progress=lambda d, t: seen.append((d, t)))
    assert summary.received == 5  # three hook events, one log event, one bad line
    assert summary.events_published == 4
    assert summary.dead_lettered == 1
    assert mem.sink.rejected[0].origin == "replay:okta.jsonl"
    assert seen[-1] == (path.stat().st_size, path.stat().st_size)
    again = await replay_file(mem.ingest, "okta", path, batch_size=2)
    assert again.events_published == 0
    assert again.duplicates == 3
