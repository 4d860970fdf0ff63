"""Backfill: replay a file of vendor records through the same ingestion as the hooks and raw topics.

Accepted files: JSON lines (one record or envelope per line), a JSON array, or one JSON document such as
CloudTrail's `{"Records": [...]}` (S3 delivery) or an Okta hook envelope; gzip-compressed or not.
Dedupe makes a replay of records already ingested publish nothing new.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from closeloop.untrusted import UntrustedInput, decode_text, parse_json
from connectors.envelopes import MalformedBody, records_of
from connectors.ingest_records import IngestRecords, IngestSummary, Origin

GZIP_MAGIC = b"\x1f\x8b"
Progress = Callable[[int, int | None], None]  # (done, total) in bytes of the file


@dataclass(frozen=True)
class FileItem:
    body: Any
    raw: bytes
    error: str | None
    position: int  # bytes of the (compressed) file consumed so far
    total: int  # size of the file in bytes


def _open(path: Path) -> tuple[IO[bytes], IO[bytes]]:
    raw: IO[bytes] = path.open("rb")
    if raw.read(2) == GZIP_MAGIC:
        raw.seek(0)
        decompressed = cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
        return decompressed, raw
    raw.seek(0)
    return raw, raw


def _first_line_is_json(path: Path) -> bool:
    stream, raw = _open(path)
    with raw, stream:
        for line in stream:
            if line.strip():
                try:
                    parse_json(decode_text(line))
                except UntrustedInput:
                    return False
                return True
    return True


def iter_file(path: Path) -> Iterator[FileItem]:
    """Parsed values of a file, one per line for JSON lines, a single one for a JSON document."""
    total = path.stat().st_size
    stream, raw = _open(path)
    with raw, stream:
        head = stream.read(4096).lstrip()
    whole_document = head.startswith(b"[") or (head.startswith(b"{") and not _first_line_is_json(path))
    stream, raw = _open(path)
    with raw, stream:
        if whole_document:
            data = stream.read()
            try:
                yield FileItem(parse_json(decode_text(data)), data, None, raw.tell(), total)
            except UntrustedInput as exc:
                yield FileItem(None, data[:65536], f"file {exc.reason}", raw.tell(), total)
            return
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                yield FileItem(parse_json(decode_text(line)), line.rstrip(b"\r\n"), None, raw.tell(), total)
            except UntrustedInput as exc:
                yield FileItem(None, line.rstrip(b"\r\n"), f"line {number} {exc.reason}", raw.tell(), total)


async def replay_file(
    ingest: IngestRecords,
    source: str,
    path: Path,
    *,
    batch_size: int = 500,
    progress: Progress | None = None,
) -> IngestSummary:
    connector = ingest.connector(source)
    origin = Origin(kind="replay", detail=path.name)
    total: int | None = None
    summary = IngestSummary()
    batch: list[Any] = []
    for item in iter_file(path):
        if item.error is not None:
            summary.add(await ingest.reject_body(source, item.raw, item.error, origin))
        else:
            try:
                batch.extend(records_of(connector, item.body))
            except MalformedBody as exc:
                summary.add(await ingest.reject_body(source, item.raw, exc.reason, origin))
        while len(batch) >= batch_size:
            summary.add(await ingest(source, batch[:batch_size], origin))
            batch = batch[batch_size:]
        total = item.total
        if progress is not None:
            progress(item.position, total)
    if batch:
        summary.add(await ingest(source, batch, origin))
    if progress is not None and total is not None:
        progress(total, total)
    return summary
