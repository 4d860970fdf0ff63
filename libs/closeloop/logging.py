"""structlog JSON logging with correlation ids; values of secret-looking keys are redacted."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_KEY = re.compile(r"(secret|token|password|passwd|authorization|signature|api[_-]?key|dsn|cookie)", re.I)
_DSN_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
REDACTED = "[redacted]"


def redact_secrets(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Never let a secret reach a log line: by key name, and passwords inside DSNs anywhere."""
    for key, value in list(event_dict.items()):
        if _SECRET_KEY.search(key) and key != "event":
            event_dict[key] = REDACTED
        elif isinstance(value, str) and "://" in value:
            event_dict[key] = _DSN_PASSWORD.sub(r"\1" + REDACTED + "@", value)
    return event_dict


# Libraries that log plain text on their own: only their warnings reach the JSON stream's neighbours.
QUIET_LIBRARIES = ("faust", "mode", "aiokafka", "kafka")


def configure_logging(service: str, level: str = "INFO") -> None:
    logging.basicConfig(format="%(message)s", stream=sys.stdout, level=level.upper(), force=True)
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
