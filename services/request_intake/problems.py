"""Why a vendor payload produced no event: it cannot be mapped (an error) or it is not for us (a skip)."""

from __future__ import annotations

from dataclasses import dataclass


class Unmappable(ValueError):
    """The payload is about a ticket we must handle but cannot be turned into a TicketEvent.

    `field` names the vendor field at fault (a dotted path into the payload) so the sender can fix it;
    the payload goes to the dead-letter topic and the webhook answers 422.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def describe(self) -> str:
        return f"{self.field}: {self.reason}"

    @classmethod
    def joined(cls, problems: list[Unmappable]) -> Unmappable:
        """Several records' problems as one (the first field names it; the reason lists them all)."""
        if len(problems) == 1:
            return problems[0]
        return cls(problems[0].field, "; ".join(p.describe() for p in problems[:20]))

    def within(self, prefix: str) -> Unmappable:
        """The same problem, located inside an element of a batch (`result[2].state`)."""
        if not self.field:  # the element as a whole
            return Unmappable(prefix or "<body>", self.reason)
        return Unmappable(f"{prefix}.{self.field}" if prefix else self.field, self.reason)


@dataclass(frozen=True)
class Invalid:
    """One record of a batch that cannot be mapped; the other records of the batch go on, and the
    delivery is dead-lettered with this problem."""

    problem: Unmappable


@dataclass(frozen=True)
class Skipped:
    """A valid payload that carries nothing to publish; counted by `why`, never an error."""

    why: str  # a short, stable label used as a metric label value
    detail: str = ""
    ticket: str | None = None
