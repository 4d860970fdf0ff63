"""The reconciler's side of correlation: bind tickets' names before routing, announce what grants teach, send on
tickets bound late, and know which keys hold tickets still waiting for a name (README: names as people write them).

Routing is by canonical principal, so a ticket's names are bound in the tickets router: it goes to the partition
of every account it binds to, or is parked under its provisional key. The join re-binds parked tickets when a tick
reaches their key; `due` says which keys to tick: those tried against an older directory than the current one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from closeloop.contracts.codec import encode, kafka_key
from closeloop.contracts.directory import IdentityLinked
from closeloop.contracts.grants import GrantEvent, PrincipalStatusChanged
from closeloop.contracts.ticket_interpretation import interpret
from closeloop.contracts.tickets import TicketEvent
from closeloop.identity import Directory
from closeloop.identity.bind import bind_ticket
from closeloop.settings import IdentitySettings
from reconciliation.directory_feed import ANNOUNCER_HEADER
from reconciliation.join_records import KIND, Headers, Incoming, forward_headers
from reconciliation.routing import partition_for, principal_of_key, route
from reconciliation.state import EntitlementState

Send = Callable[[str, bytes | None, bytes | None, int | None, Headers], Awaitable[Awaitable[Any]]]
Skip = Callable[[str, str], None]


class NameBinding:
    def __init__(
        self,
        directory: Directory,
        identity: IdentitySettings,
        *,
        announcer: bytes,
        join_topic: str,
        partitions: int,
        source: str,
        send: Send,
        skip: Skip,
    ) -> None:
        self.directory = directory
        self.identity = identity
        self.announcer = announcer
        self.join_topic = join_topic
        self.partitions = partitions
        self.source = source
        self._send = send
        self._skip = skip
        # Keys holding tickets whose names are not bound yet -> (join partition, directory version last tried).
        self.pending: dict[str, tuple[int, int]] = {}

    async def route_ticket(self, topic: str, message: Incoming, event: TicketEvent) -> list[Awaitable[Any]]:
        """To the partition of every account the ticket binds to, or parked under its provisional key."""
        binding = bind_ticket(event, self.directory)
        sent: list[Awaitable[Any]] = []
        if binding.pending:
            principal = interpret(event).beneficiary.principal
            if principal is None:
                self._skip(topic, "ticket names no principal")
                return sent
            headers = forward_headers("pending", topic, message.partition, message.offset, message.headers)
            target = partition_for(principal, self.partitions)
            sent.append(await self._send(self.join_topic, principal.encode(), message.value, target, headers))
            return sent
        for bound in binding.events:
            value = message.value if bound is event else encode(bound)
            routed = route(bound)
            if routed.principal is not None:
                headers = forward_headers("event", topic, message.partition, message.offset, message.headers)
                target = partition_for(routed.principal, self.partitions)
                sent.append(await self._send(self.join_topic, routed.principal.encode(), value, target, headers))
            elif routed.broadcast:
                headers = forward_headers("person", topic, message.partition, message.offset, message.headers)
                for target in range(self.partitions):
                    sent.append(await self._send(self.join_topic, None, value, target, headers))
            else:
                self._skip(topic, routed.skip_reason or "unroutable")
        return sent

    async def announce(self, event: GrantEvent | PrincipalStatusChanged) -> list[Awaitable[Any]]:
        """Announce what a grant teaches the directory that it did not know (nothing, in steady state)."""
        sent: list[Awaitable[Any]] = []
        for taught in self.directory.observe(event, self.source):
            topic = self.identity.links_topic if isinstance(taught, IdentityLinked) else self.identity.catalog_topic
            headers = [(ANNOUNCER_HEADER, self.announcer)]
            sent.append(await self._send(topic, kafka_key(taught), encode(taught), None, headers))
        return sent

    async def forward(self, bound: TicketEvent, headers: Headers) -> Awaitable[Any]:
        """A ticket bound late goes to its bound key's partition, as if it had named the ids in the first place."""
        principal = route(bound).principal or interpret(bound).beneficiary.principal or ""
        origin = [(k, v) for k, v in headers if k != KIND]
        target = partition_for(principal, self.partitions)
        return await self._send(self.join_topic, principal.encode(), encode(bound), target, [(KIND, b"event"), *origin])

    def note(self, states: Iterable[EntitlementState], tried_version: int) -> None:
        """After a join batch: which of its keys hold parked tickets, tried against which directory version."""
        for state in states:
            if state.pending:
                self.pending[state.key] = (partition_for(state.principal, self.partitions), tried_version)
            else:
                self.pending.pop(state.key, None)

    def rebuild(self, entitlements: Iterable[tuple[str, dict[str, Any]]], owned: set[int]) -> None:
        """From the local join state after an assignment: parked tickets not tried against this directory yet."""
        self.pending = {}
        for key, raw in entitlements:
            partition = partition_for(principal_of_key(key), self.partitions)
            if raw.get("pending") and partition in owned:
                self.pending[key] = (partition, -1)

    def due(self, owned: set[int]) -> list[tuple[str, int]]:
        """Keys to tick: their parked tickets were tried before the directory last learned something."""
        version = self.directory.version
        due = [(k, p) for k, (p, tried) in self.pending.items() if tried < version and p in owned]
        for key, partition in due:
            self.pending[key] = (partition, version)
        return due
