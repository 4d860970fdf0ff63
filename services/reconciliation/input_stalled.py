"""INPUT_STALLED (operational): an input stream's watermark has not advanced for longer than the stall limit.

While a stream stalls, every absence finding waiting for it is held (see watermarks.py); instead of one drift
alert per entitlement the SOC gets this one finding per stream, naming the stream and how far behind it is.
It closes when the stream catches up. The finding is about a pseudo-entitlement of the reconciler itself
(`closeloop:service:reconciliation|closeloop:stream:<topic>|progress`), so it has the same deterministic ids,
lifecycle and OCSF document as every other finding, and one join partition (the one that pseudo-principal
hashes to) judges it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from closeloop.contracts.alerts import DriftRule
from reconciliation.rules.base import Evidence, JoinView, RuleResult, clear, holds, iso
from reconciliation.state import EntitlementState
from reconciliation.watermarks import WatermarkBook

RULE = DriftRule.INPUT_STALLED
STALL_PRINCIPAL = "closeloop:service:reconciliation"


def stall_key(topic: str) -> str:
    return f"{STALL_PRINCIPAL}|closeloop:stream:{topic}|progress"


def stall_view(topic: str) -> JoinView:
    return JoinView(
        state=EntitlementState(
            key=stall_key(topic), principal=STALL_PRINCIPAL, resource=f"closeloop:stream:{topic}", privilege="progress"
        )
    )


def input_stalled(
    book: WatermarkBook, partition: int, topic: str, stream: str, now: datetime, limit: timedelta
) -> RuleResult:
    watermark, lag = book.lag([partition], stream, now)
    if lag <= limit:
        return clear(RULE)
    behind = f"{int(lag.total_seconds())}s behind" if watermark is not None else "no progress heard"
    return holds(
        RULE,
        Evidence(
            message=f"input {topic} ({stream}) has stalled: {behind} (watermark {iso(watermark) or 'unknown'}, "
            f"limit {iso(limit)}); findings about missing {stream} are held until it catches up",
            absent=(f"no progress on {topic} for longer than {iso(limit)}",),
            facts=(("stream", topic),),
            include_grant=False,
        ),
    )
