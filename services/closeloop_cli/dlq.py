"""`closeloop dlq list|replay <topic>`: inspect dead letters, and re-drive them once the fix is in.

`<topic>` is the topic the letters belong to (`iam.raw.okta`) or its dead-letter topic (`iam.raw.okta.dlq`).
"""

from __future__ import annotations

import asyncio
import base64
from typing import Annotated, Any

import typer
from rich.console import Console

from closeloop.cli_output import print_listing
from closeloop.dead_letter import Kind, StoredLetter
from closeloop.list_dead_letters import LetterSelection, dead_letter_topic, list_dead_letters
from closeloop.replay_dead_letters import replay_dead_letters
from closeloop.settings import KafkaSettings

app = typer.Typer(help="Dead letters: list them with their reason, replay them onto their topic after a fix.")
console = Console(stderr=True)

COLUMNS = ("partition", "offset", "kind", "reason", "origin", "failed_at", "replay_onto")


Partition = Annotated[int | None, typer.Option(min=0, help="only this partition of the dead-letter topic")]
FromOffset = Annotated[int | None, typer.Option(min=0, help="only letters at or after this offset")]
ToOffset = Annotated[int | None, typer.Option(min=0, help="only letters at or before this offset")]
Reason = Annotated[str | None, typer.Option(help="only letters whose reason contains this (any case)")]
KindOption = Annotated[Kind | None, typer.Option("--kind", help="only malformed or unexpected letters")]
JsonOutput = Annotated[bool, typer.Option("--json", help="a JSON array with every field and the original bytes")]


def _row(letter: StoredLetter) -> dict[str, Any]:
    return {
        "partition": letter.partition,
        "offset": letter.offset,
        "kind": letter.kind,
        "reason": letter.reason,
        "origin": _origin(letter),
        "failed_at": letter.failed_at,
        "replay_onto": letter.replay_topic,
    }


def _origin(letter: StoredLetter) -> str:
    if letter.source_offset is None:
        return letter.source
    return f"{letter.source} {letter.replay_topic}/{letter.source_partition}/{letter.source_offset}"


def _document(letter: StoredLetter) -> dict[str, Any]:
    """Every field of a letter; the original value as text when it is UTF-8, else base64."""
    document = {
        **_row(letter),
        "dead_letter_topic": letter.dead_letter_topic,
        "source": letter.source,
        "source_partition": letter.source_partition,
        "source_offset": letter.source_offset,
        "service": letter.service,
        "key": _bytes(letter.key),
        "original_headers": {k: _bytes(v) for k, v in letter.original_headers},
    }
    document.pop("origin")
    try:
        document["value"] = letter.value.decode() if letter.value is not None else None
        document["value_encoding"] = "utf-8"
    except UnicodeDecodeError:
        document["value"] = base64.b64encode(letter.value or b"").decode()
        document["value_encoding"] = "base64"
    return document


def _bytes(value: bytes | None) -> str | None:
    return value.decode(errors="replace") if value is not None else None


def _selection(
    partition: int | None, from_offset: int | None, to_offset: int | None, reason: str | None, kind: Kind | None
) -> LetterSelection:
    return LetterSelection(partition, from_offset, to_offset, reason, kind.value if kind is not None else None)


def _print(letters: list[StoredLetter], json_output: bool, title: str) -> None:
    if json_output:
        print_listing([_document(letter) for letter in letters], json_output=True)
    else:
        print_listing([_row(letter) for letter in letters], COLUMNS, title=title)


def _missing(topic: str, exc: LookupError) -> typer.Exit:
    console.print(f"[red]{exc}[/] (dead letters of {topic} are kept on {dead_letter_topic(topic)})")
    return typer.Exit(2)


@app.command("list")
def list_letters(
    topic: Annotated[str, typer.Argument(help="e.g. iam.raw.okta, itsm.raw.servicenow, iam.grants.v1")],
    partition: Partition = None,
    from_offset: FromOffset = None,
    to_offset: ToOffset = None,
    reason: Reason = None,
    kind: KindOption = None,
    json_output: JsonOutput = False,
) -> None:
    """The letters of a topic: where they came from, why, and when."""
    selection = _selection(partition, from_offset, to_offset, reason, kind)
    try:
        letters = asyncio.run(list_dead_letters(KafkaSettings(), topic, selection))
    except LookupError as exc:
        raise _missing(topic, exc) from exc
    _print(letters, json_output, dead_letter_topic(topic))


@app.command("replay")
def replay_letters(
    topic: Annotated[str, typer.Argument(help="e.g. iam.raw.okta, itsm.raw.servicenow, iam.grants.v1")],
    partition: Partition = None,
    from_offset: FromOffset = None,
    to_offset: ToOffset = None,
    reason: Reason = None,
    kind: KindOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list what would be replayed, publish nothing")] = False,
    json_output: JsonOutput = False,
) -> None:
    """Publish the originals again onto the topic they can be replayed onto (after fixing what failed)."""
    selection = _selection(partition, from_offset, to_offset, reason, kind)
    try:
        letters = asyncio.run(replay_dead_letters(KafkaSettings(), topic, selection, dry_run=dry_run))
    except LookupError as exc:
        raise _missing(topic, exc) from exc
    _print(letters, json_output, f"{'would replay' if dry_run else 'replayed'} from {dead_letter_topic(topic)}")
    verb = "would be replayed" if dry_run else "replayed"
    console.print(f"{len(letters)} letter(s) {verb}")
