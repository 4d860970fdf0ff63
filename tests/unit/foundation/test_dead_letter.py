"""The dead-letter rule's pure parts: headers written, letters read back, where a letter replays, selection."""

from __future__ import annotations

from typing import Any

from aiokafka import ConsumerRecord

from closeloop.dead_letter import DeadLetter, DeadLetterPublisher, Headers, Kind, StoredLetter
from closeloop.list_dead_letters import LetterSelection, dead_letter_topic


def record(topic: str, headers: list[tuple[str, bytes]], offset: int = 7, value: bytes = b"{}") -> Any:
    return ConsumerRecord(topic, 0, offset, 0, 0, b"k", value, None, 1, len(value), headers)


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, Headers]] = []

    async def send_and_wait(self, topic: str, value: bytes | None, *, key: bytes | None, headers: Headers) -> None:
        self.sent.append((topic, key, value, headers))


async def test_a_consumed_record_is_dead_lettered_to_its_own_topics_dlq_and_reads_back_whole() -> None:
    original = record("itsm.tickets.v1", [("ce_id", b"e-1")], offset=41)
    letter = DeadLetter.of_record(original, "processing failed: ValueError: boom", Kind.UNEXPECTED)
    producer = Recorder()
    await DeadLetterPublisher(producer, "provisioning").send(letter)

    [(topic, key, value, headers)] = producer.sent
    assert (topic, key, value) == ("itsm.tickets.v1.dlq", b"k", b"{}")
    stored = StoredLetter.of(record(topic, headers or [], offset=3))
    assert (stored.kind, stored.reason, stored.service) == (
        "unexpected",
        "processing failed: ValueError: boom",
        "provisioning",
    )
    assert (stored.replay_topic, stored.source_partition, stored.source_offset) == ("itsm.tickets.v1", 0, 41)
    assert stored.original_headers == (("ce_id", b"e-1"),)
    assert stored.failed_at is not None


def test_a_hook_letter_replays_onto_the_raw_topic_it_names() -> None:
    letter = DeadLetter(
        topic="iam.raw.okta", value=b"not json", reason="body is not JSON", source="hook:/v1/hooks/okta"
    )
    assert letter.dead_letter_topic == "iam.raw.okta.dlq"
    headers = dict(letter.headers("connectors"))
    assert headers["dlq_kind"] == b"malformed"
    assert "dlq_source_offset" not in headers
    stored = StoredLetter.of(record("iam.raw.okta.dlq", list(headers.items())))
    assert stored.replay_topic == "iam.raw.okta"
    assert stored.source_offset is None


def test_letters_written_before_the_rule_replay_where_their_ingress_publishes() -> None:
    def replay_of(dlq: str, source: str) -> str:
        headers = [("dlq_reason", b"x"), ("dlq_source", source.encode()), ("dlq_source_topic", dlq[:-4].encode())]
        stored = StoredLetter.of(record(dlq, headers))
        assert stored.kind == "unknown"
        return stored.replay_topic

    assert replay_of("iam.grants.v1.dlq", "hook:/v1/hooks/vault") == "iam.raw.vault"
    assert replay_of("iam.grants.v1.dlq", "kafka:iam.raw.github") == "iam.raw.github"
    assert replay_of("itsm.tickets.v1.dlq", "webhook:jira") == "itsm.raw.jira"
    assert replay_of("itsm.tickets.v1.dlq", "kafka") == "itsm.tickets.v1"


def test_a_long_reason_is_capped_in_the_header() -> None:
    headers = dict(DeadLetter(topic="t", value=None, reason="x" * 10_000).headers("s"))
    assert len(headers["dlq_reason"]) == 4000


def test_selection_by_offset_range_reason_and_kind() -> None:
    def stored(offset: int, reason: str, kind: Kind) -> StoredLetter:
        letter = DeadLetter(topic="iam.raw.okta", value=b"{}", reason=reason, kind=kind)
        return StoredLetter.of(record("iam.raw.okta.dlq", letter.headers("s"), offset=offset))

    letters = [
        stored(0, "unmappable: variables.access_resource: missing", Kind.MALFORMED),
        stored(1, "processing failed: KeyError", Kind.UNEXPECTED),
        stored(2, "Unmappable: requested_for", Kind.MALFORMED),
    ]

    def pick(selection: LetterSelection) -> list[int]:
        return [letter.offset for letter in letters if letter in selection]

    assert pick(LetterSelection()) == [0, 1, 2]
    assert pick(LetterSelection(from_offset=1, to_offset=1)) == [1]
    assert pick(LetterSelection(reason="UNMAPPABLE")) == [0, 2]
    assert pick(LetterSelection(kind="unexpected")) == [1]
    assert pick(LetterSelection(partition=1)) == []


def test_a_topic_or_its_dead_letter_topic_names_the_same_letters() -> None:
    assert dead_letter_topic("iam.raw.okta") == dead_letter_topic("iam.raw.okta.dlq") == "iam.raw.okta.dlq"
