"""Re-drive dead letters after a fix: publish each original onto the topic it can be replayed onto.

The original's value, key and headers are restored, plus `dlq_replayed_from` (`<dlq topic>/<partition>/<offset>`)
so a letter that fails again says where it was replayed from. Replaying twice publishes twice: every
consumer of these topics deduplicates (vendor record ids, ticket revisions, event ids), so the effect is once.
"""

from __future__ import annotations

from closeloop.dead_letter import StoredLetter
from closeloop.kafka import producer
from closeloop.list_dead_letters import LetterSelection, list_dead_letters
from closeloop.settings import KafkaSettings

REPLAYED_FROM_HEADER = "dlq_replayed_from"


async def replay_dead_letters(
    kafka: KafkaSettings, topic: str, selection: LetterSelection | None = None, *, dry_run: bool = False
) -> list[StoredLetter]:
    """Replay the selected letters of `topic`'s dead-letter topic (none when `dry_run`); return them."""
    letters = await list_dead_letters(kafka, topic, selection)
    if dry_run or not letters:
        return letters
    replayer = producer(kafka, client_suffix="dlq-replay")
    await replayer.start()
    try:
        for letter in letters:
            origin = f"{letter.dead_letter_topic}/{letter.partition}/{letter.offset}".encode()
            await replayer.send_and_wait(
                letter.replay_topic,
                letter.value,
                key=letter.key,
                headers=[*letter.original_headers, (REPLAYED_FROM_HEADER, origin)],
            )
    finally:
        await replayer.stop()
    return letters
