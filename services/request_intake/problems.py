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

    def within(self, prefix: str) -> Unmappable:
        """The same problem, located inside an element of a batch (`result[2].state`)."""
        return Unmappable(f"{prefix}.{self.field}" if prefix else self.field, self.reason)


@dataclass(frozen=True)
class Skipped:
    """A valid payload that carries nothing to publish; counted by `why`, never an error."""

    why: str  # a short, stable label used as a metric label value
    detail: str = ""
    ticket: str | None = None
