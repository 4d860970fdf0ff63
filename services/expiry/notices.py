"""Owner notices before expiry: which offsets are due, and which one to actually send.

Offsets are durations before `expires_at` (7 days, 1 day, ...). Each (expiry date, offset) is sent at
most once; a changed expiry date starts a fresh series. After downtime several offsets can be due at
once: only the nearest one to expiry is sent (a "7 days left" notice with 12 hours left would mislead),
and the earlier ones are recorded as superseded so they never go out late. An offset whose notice point
lies before the entitlement existed (a 7-day notice for a 3-day grant) does not apply: the owner chose
that short duration, so it is recorded as superseded too.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True)
class NoticePlan:
    send: timedelta | None = None
    # Offsets recorded as handled without an event (superseded by a nearer one).
    superseded: tuple[timedelta, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return self.send is None and not self.superseded


def plan_notices(
    expires_at: datetime,
    offsets: Sequence[timedelta],
    already: Collection[timedelta],
    now: datetime,
    since: datetime | None = None,
) -> NoticePlan:
    """The notice to send now for an entitlement expiring at `expires_at` (granted at `since`), if any."""
    if now >= expires_at:
        return NoticePlan()  # expiry itself is due: the revoke says it all
    due = sorted((o for o in offsets if now >= expires_at - o and o not in already), reverse=True)
    applicable = [o for o in due if since is None or expires_at - o >= since]
    if not applicable:
        return NoticePlan(superseded=tuple(due))
    send = applicable[-1]
    return NoticePlan(send=send, superseded=tuple(o for o in due if o != send))


def earliest_notice_at(expires_at: datetime, offsets: Sequence[timedelta]) -> datetime | None:
    """When the first notice for this expiry date becomes due (the sweep's lower time bound)."""
    if not offsets:
        return None
    return expires_at - max(offsets)


def describe_offset(offset: timedelta) -> str:
    """`7d`, `1d`, `12h`, `30m`, `45s` for event reasons and logs."""
    seconds = int(offset.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
