"""Errors a parser may raise: the record can never become an event (it is dead-lettered with the reason)."""

from __future__ import annotations


class MalformedRecord(ValueError):
    """The vendor record is not what its source sends, or lacks what its event type requires."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
