"""The ingestion operation: dedupe, dead letters, skip counting, state across batches, aliases."""

from __future__ import annotations

from typing import Any

import pytest

from closeloop.contracts.base import Envelope
from connectors.envelopes import records_of
from connectors.ingest_records import Origin
from connectors.registry import CONNECTORS
from tests.unit.connectors.memory import memory_ingestion, metric
from tests.unit.connectors.support import fixture, fixture_bytes, summary

HOOK = Origin(kind="hook", detail="/v1/hooks/test")


def records(source: str, name: str) -> list[Any]:
    return records_of(CONNECTORS[source], fixture(source, name))


async def test_a_record_is_published_once_whatever_path_delivers_it() -> None:
    mem = memory_ingestion()
    first = await mem.ingest("okta", records("okta", "group_membership_add"), HOOK)
    again = await mem.ingest(
        "okta", records("okta", "group_membership_add"), Origin(kind="kafka", detail="iam.raw.okta")
    )
    assert first.events_published == 1
    assert again.events_published == 0
    assert again.duplicates == 1
    assert len(mem.sink.events) == 1
    assert metric(mem.metrics, "closeloop_duplicates_total", input="kafka:okta") == 1


async def test_duplicates_within_one_batch_publish_once() -> None:
    mem = memory_ingestion()
    batch = records("cloudtrail", "attach_user_policy") * 3
    result = await mem.ingest("cloudtrail", batch, HOOK)
    assert (result.received, result.events_published, result.duplicates) == (3, 1, 2)


async def test_malformed_records_are_rejected_with_reason_and_the_rest_published() -> None:
    mem = memory_ingestion()
    batch = [*records("okta", "group_membership_add"), *records("okta", "target_null_group_add"), "not an object"]
    result = await mem.ingest("okta", batch, HOOK)
    assert (result.events_published, result.dead_lettered) == (1, 2)
    reasons = [r.reason for r in mem.sink.rejected]
    assert any("target of type User" in r for r in reasons)
    assert any("not a JSON object" in r for r in reasons)
    assert all(r.origin == "hook:/v1/hooks/test" for r in mem.sink.rejected)
    assert metric(mem.metrics, "closeloop_dead_letters_total", input="hook:okta", reason="malformed") == 2


async def test_single_record_dead_letter_keeps_the_original_bytes() -> None:
    mem = memory_ingestion()
    raw = fixture_bytes("okta", "target_null_group_add")
    await mem.ingest("okta", records("okta", "target_null_group_add"), Origin(kind="hook", detail="x", raw=raw))
    assert mem.sink.rejected[0].value == raw
    # Named by source, so the sink can put it on that source's raw topic's dead-letter topic.
    assert (mem.sink.rejected[0].source, mem.sink.rejected[0].origin) == ("okta", "hook:x")


async def test_records_that_carry_no_grant_are_counted_by_reason() -> None:
    mem = memory_ingestion()
    result = await mem.ingest(
        "okta", records("okta", "event_hook_delivery") + records("okta", "failed_group_add"), HOOK
    )
    assert result.skipped == 2
    assert dict(result.skipped_by_reason) == {"not_a_grant_event": 1, "failed_operation": 1}
    assert metric(mem.metrics, "closeloop_skipped_total", input="hook:okta", why="failed_operation") == 1
    assert metric(mem.metrics, "closeloop_connector_events_total", source_system="okta", action="grant") == 3


async def test_skipped_records_are_not_claimed() -> None:
    mem = memory_ingestion()
    await mem.ingest("okta", records("okta", "session_start"), HOOK)
    assert mem.ledger.processed == set()


async def test_binding_state_survives_between_batches() -> None:
    mem = memory_ingestion()
    await mem.ingest("k8s", records("k8s", "crb_create"), HOOK)
    result = await mem.ingest("k8s", records("k8s", "crb_delete"), HOOK)
    assert result.events_published == 3
    assert {action for action, _ in summary(mem.sink.events[-3:])} == {"revoke"}


async def test_state_changes_within_a_batch_apply_in_order() -> None:
    mem = memory_ingestion()
    batch = records("k8s", "crb_create") + records("k8s", "crb_patch") + records("k8s", "crb_delete")
    result = await mem.ingest("k8s", batch, HOOK)
    assert result.events_published == 3 + 2 + 3


class FailingSink:
    def __init__(self) -> None:
        self.calls = 0

    async def publish(self, events: Any) -> None:
        self.calls += 1
        raise ConnectionError("broker down")

    async def reject(self, rejected: Any) -> None:
        return None


async def test_a_failed_publish_leaves_the_record_unclaimed_for_a_retry() -> None:
    mem = memory_ingestion()
    failing = FailingSink()
    mem.ingest._sink = failing  # the same ledger, a broker that is down
    with pytest.raises(ConnectionError):
        await mem.ingest("okta", records("okta", "group_membership_add"), HOOK)
    assert mem.ledger.processed == set()
    mem.ingest._sink = mem.sink
    retried = await mem.ingest("okta", records("okta", "group_membership_add"), HOOK)
    assert retried.events_published == 1


async def test_aliases_seen_together_are_linked() -> None:
    mem = memory_ingestion()
    await mem.ingest("okta", records("okta", "group_membership_add"), HOOK)
    assert mem.ledger.aliases["okta:user:00u1alice000000x697"] == mem.ledger.aliases["okta:user:alice.ng@acme.example"]
    assert "email:alice.ng@acme.example" in mem.ledger.aliases


async def test_reject_body_counts_and_dead_letters() -> None:
    mem = memory_ingestion()
    result = await mem.ingest.reject_body("vault", b"{not json", "body is not JSON", HOOK)
    assert result.dead_lettered == 1
    assert mem.sink.rejected[0].value == b"{not json"


def _event_ids(events: list[Envelope]) -> list[str]:
    return [e.event_id for e in events]


async def test_event_ids_do_not_depend_on_the_path() -> None:
    a, b = memory_ingestion(), memory_ingestion()
    await a.ingest("github", records("github", "org_remove_member"), HOOK)
    await b.ingest("github", records("github", "org_remove_member"), Origin(kind="replay", detail="f.jsonl"))
    assert _event_ids(a.sink.events) == _event_ids(b.sink.events)
