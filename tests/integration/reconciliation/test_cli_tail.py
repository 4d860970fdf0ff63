"""`closeloop alerts tail`: a table for people, raw OCSF JSON with --json."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from closeloop.contracts.alerts import DriftRule
from closeloop.kafka import producer
from closeloop.settings import KafkaSettings
from closeloop.topics import TopicSpec, ensure_topics
from closeloop_cli.main import app
from reconciliation.ocsf_schema import validate_detection_finding
from tests.integration.reconciliation.test_webhook_sink import alert_records

from .support import reconciler_settings

pytestmark = pytest.mark.integration


def test_tail_prints_a_table_and_raw_ocsf(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    topic = reconciler_settings(tmp_path).alerts_topic
    records = alert_records(3)

    async def publish() -> None:
        await ensure_topics(kafka_settings, [TopicSpec(topic, retention_ms=3600_000)])
        prod = producer(kafka_settings)
        await prod.start()
        try:
            for record in records:
                await prod.send_and_wait(topic, record.value, key=record.key, headers=record.headers)
        finally:
            await prod.stop()

    asyncio.run(publish())
    runner = CliRunner()
    env = {"CLOSELOOP_KAFKA_BOOTSTRAP": kafka_settings.bootstrap, "COLUMNS": "250"}

    raw = runner.invoke(app, ["alerts", "tail", "--topic", topic, "--json", "--no-follow", "--from-beginning"], env=env)
    assert raw.exit_code == 0, raw.output
    documents = [json.loads(line) for line in raw.output.splitlines() if line.strip()]
    assert sorted(d["metadata"]["uid"] for d in documents) == sorted(r.event_id for r in records)
    assert all(validate_detection_finding(d, "1.7.0") == [] for d in documents)

    wanted = DriftRule.CLOSED_NOT_REMOVED
    args = ["alerts", "tail", "--topic", topic, "--no-follow", "--rule", wanted.value, "-n", "5"]
    table = runner.invoke(app, args, env={**env, "COLUMNS": "40"})  # piped and narrow
    assert table.exit_code == 0, table.output
    assert [rule for rule in DriftRule if rule.value in table.output] == [wanted]
    header, *rows = [line.split("\t") for line in table.stdout.splitlines()]
    assert header == ["time", "activity", "rule", "severity", "entitlement", "tickets", "message"]
    expected = [d for d in documents if wanted.value in d["finding_info"]["types"]]
    assert sorted(row[6] for row in rows) == sorted(d["message"] for d in expected)  # whole, on one line

    followed = runner.invoke(app, ["alerts", "tail", "--topic", topic, "--from-beginning", "--idle-exit", "1"], env=env)
    assert followed.exit_code == 0, followed.output
    assert "create" in followed.output
    assert records[0].key.decode().split("|")[0] in followed.output.replace("\n", "")
