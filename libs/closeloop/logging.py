"""structlog JSON logging with correlation ids; values of secret-looking keys are redacted."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

_SECRET_KEY = re.compile(r"(secret|token|password|passwd|authorization|signature|api[_-]?key|dsn|cookie)", re.I)
# `scheme://user:password@host`: the password runs to the last `@` of the authority (it may hold `@`).
_DSN_PASSWORD = re.compile(r"(://[^:/?#@\s]*:)[^/?#\s]*@")
# `?password=...` / `&api_key=...`: query and form parameters; the key is checked like a field name.
_PARAMETER = re.compile(r"([?&;])([^=&;?#\s]{1,64})=([^&;#\s\"']*)")
# Credentials written inline: `Authorization: Bearer abc`, `SSWS 00abc`, `Basic dXNlcg==`.
_SCHEME_CREDENTIAL = re.compile(r"\b(bearer|basic|ssws)(\s+)[A-Za-z0-9._~+/=-]{8,}", re.I)
REDACTED = "[redacted]"
# Nesting deeper than this is replaced whole (log values are small; a cycle must not recurse forever).
_MAX_REDACT_DEPTH = 12


def redact_text(text: str) -> str:
    """Secrets inside free text: DSN passwords, secret-named parameters, inline credentials."""
    if "://" in text:
        text = _DSN_PASSWORD.sub(lambda m: m.group(1) + REDACTED + "@", text)
    if "=" in text:
        text = _PARAMETER.sub(_redact_parameter, text)
    return _SCHEME_CREDENTIAL.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)


def _redact_parameter(match: re.Match[str]) -> str:
    separator, key, value = match.groups()
    return f"{separator}{key}={REDACTED if value and _SECRET_KEY.search(key) else value}"


def redact_value(value: Any, depth: int = 0) -> Any:
    """`value` with secrets redacted at any depth: by key name in mappings, by content in strings."""
    if isinstance(value, str):
        return redact_text(value)
    if depth >= _MAX_REDACT_DEPTH and isinstance(value, Mapping | list | tuple | set):
        return REDACTED
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) else redact_value(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set):
        return [redact_value(v, depth + 1) for v in value]
    return value


def redact_secrets(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Never let a secret reach a log line: by key name at any depth (`headers.Authorization`), and by
    content in every string (DSN passwords, `?password=`, `Bearer ...` inside messages)."""
    for key, value in list(event_dict.items()):
        if _SECRET_KEY.search(key) and key != "event":
            event_dict[key] = REDACTED
        else:
            event_dict[key] = redact_value(value)
    return event_dict


class RedactingFilter(logging.Filter):
    """The same redaction for stdlib loggers (aiokafka, faust, aiohttp ...): the formatted message and the
    exception text are redacted before any handler sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed %-format: keep what there is
            message = str(record.msg)
        record.msg, record.args = redact_text(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True


# Libraries that log plain text on their own: only their warnings reach the JSON stream's neighbours.
QUIET_LIBRARIES = ("faust", "mode", "aiokafka", "kafka")


def configure_logging(service: str, level: str = "INFO") -> None:
    logging.basicConfig(format="%(message)s", stream=sys.stdout, level=level.upper(), force=True)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelNamesMapping()[level.upper()]))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redact_secrets,
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        # No file argument: print to whatever sys.stdout is at call time (test capture swaps it).
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)


def bind_correlation(correlation_id: str | None, **extra: Any) -> None:
    """Attach a correlation id (and anything else) to every log line of the current task."""
    structlog.contextvars.bind_contextvars(correlation_id=correlation_id, **extra)


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
