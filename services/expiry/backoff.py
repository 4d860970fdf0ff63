"""When an unconfirmed revoke is sent again.

The schedule is persisted in PostgreSQL (next attempt time on the revoke row), not held in a process,
so a restart or another worker continues it; that is why this is a pure function of the attempt number
rather than a tenacity retry loop around a call.

Attempt 1 goes out when the revoke is decided. When its confirmation deadline passes unconfirmed,
attempt 2 goes out `initial` later, attempt 3 `initial * factor` after the next miss, and so on up to
`maximum`. After `max_attempts` the revoke stays unconfirmed (the alert stays open) and is not resent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetrySchedule:
    initial: timedelta
    factor: float
    maximum: timedelta
    max_attempts: int

    def __post_init__(self) -> None:
        if self.initial <= timedelta(0) or self.maximum < self.initial:
            raise ValueError("need 0 < initial <= maximum")
        if self.factor < 1 or self.max_attempts < 1:
            raise ValueError("need factor >= 1 and max_attempts >= 1")

    def may_retry(self, attempt: int) -> bool:
        """Whether another attempt follows a missed deadline of attempt `attempt`."""
        return attempt < self.max_attempts

    def wait_after(self, attempt: int) -> timedelta:
        """Wait between the missed deadline of attempt `attempt` and attempt `attempt + 1`."""
        if attempt < 1:
            raise ValueError("attempts start at 1")
        # Cap the exponent and compare in seconds: a huge attempt count must not overflow timedelta.
        grown = self.initial.total_seconds() * self.factor ** min(attempt - 1, 64)
        return timedelta(seconds=min(grown, self.maximum.total_seconds()))

    def next_attempt_at(self, attempt: int, missed_at: datetime) -> datetime | None:
        """When attempt `attempt + 1` goes out, or None when the attempts are used up."""
        if not self.may_retry(attempt):
            return None
        return missed_at + self.wait_after(attempt)
