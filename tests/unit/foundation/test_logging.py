from __future__ import annotations

import json

import pytest

from closeloop.logging import REDACTED, configure_logging, get_logger, redact_secrets


def test_secret_keys_are_redacted() -> None:
    event = {"event": "hello", "webhook_secret": "whsec_abc", "Authorization": "SSWS x", "count": 3}
    out = redact_secrets(None, "info", event)
    assert out["webhook_secret"] == REDACTED
    assert out["Authorization"] == REDACTED
    assert out["count"] == 3
    assert out["event"] == "hello"


def test_passwords_inside_dsns_are_redacted() -> None:
    out = redact_secrets(None, "info", {"event": "x", "target": "postgresql://app:hunter2@db:5432/closeloop"})
    assert "hunter2" not in out["target"]
    assert out["target"] == f"postgresql://app:{REDACTED}@db:5432/closeloop"


def test_log_lines_are_json_with_service_and_correlation(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("unit-test")
    import structlog

    with structlog.contextvars.bound_contextvars(correlation_id="corr-42"):
        get_logger().info("processed", api_token="tok_live_123")
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    structlog.reset_defaults()
    assert line["service"] == "unit-test"
    assert line["correlation_id"] == "corr-42"
    assert line["event"] == "processed"
    assert line["api_token"] == REDACTED
