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


def test_secret_keys_are_redacted_at_any_depth() -> None:
    event = {
        "event": "call",
        "request": {"headers": {"Authorization": "Bearer abc", "X-Api-Key": "k1", "Accept": "json"}},
        "attempts": [{"token": "t1"}, {"status": 429}],
    }
    out = redact_secrets(None, "info", event)
    assert out["request"]["headers"] == {"Authorization": REDACTED, "X-Api-Key": REDACTED, "Accept": "json"}
    assert out["attempts"] == [{"token": REDACTED}, {"status": 429}]


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("postgresql://app:p@ss@w0rd@db:5432/closeloop", "p@ss@w0rd"),  # `@` inside the password
        ("connecting to postgresql://app:hunter2@db/closeloop failed", "hunter2"),
        ("postgresql://db:5432/closeloop?user=app&password=hunter2&sslmode=require", "hunter2"),
        ("GET https://api.example/v1?api_key=sk_live_123456&page=2", "sk_live_123456"),
        ("retrying with Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9"),
        ("okta said 401 for SSWS 00abcdefghijklmnopqrstuvwxyz", "00abcdefghijklmnopqrstuvwxyz"),
    ],
)
def test_secrets_inside_values_and_messages_are_redacted(text: str, secret: str) -> None:
    out = redact_secrets(None, "info", {"event": text, "detail": {"nested": [text]}})
    assert secret not in out["event"]
    assert secret not in out["detail"]["nested"][0]
    assert REDACTED in out["event"]


def test_ordinary_text_is_left_alone() -> None:
    for text in (
        "token creation response without auth.accessor",
        "postgresql://db:5432/closeloop",
        "https://acme.okta.com/api/v1/groups?limit=200&after=00g1",
        'WWW-Authenticate: Bearer realm="closeloop"',
    ):
        assert redact_secrets(None, "info", {"event": text})["event"] == text


def test_stdlib_loggers_are_redacted_too(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    configure_logging("unit-test")
    logging.getLogger("aiokafka.conn").warning("sasl to %s", "kafka://svc:hunter2@broker:9093")
    try:
        raise RuntimeError("Authorization: Bearer sk_live_abcdefgh12345678 refused")
    except RuntimeError:
        logging.getLogger("aiohttp.client").exception("request failed")
    out = capsys.readouterr().out
    assert "hunter2" not in out
    assert "sk_live_abcdefgh12345678" not in out
    assert out.count(REDACTED) >= 2
