"""Run a service's long-lived loops until SIGTERM/SIGINT, then stop them in order.

A service's `bootstrap()` builds a `Runtime`: the loops to run, how to ask them to stop, and what
to close afterwards. If any loop dies, the process exits non-zero so its supervisor restarts it:
a half-running consumer is worse than a restarted one.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from closeloop.contracts.codec import describe_validation_error
from closeloop.logging import get_logger

log = get_logger(__name__)


@dataclass
class Runtime:
    name: str
    loops: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    stoppers: list[Callable[[], None]] = field(default_factory=list)
    # Closed in reverse order of registration (last opened, first closed).
    closers: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    shutdown_grace_s: float = 10.0

    async def close(self) -> None:
        for closer in reversed(self.closers):
            try:
                await closer()
            except Exception:
                log.exception("error while closing", service=self.name)

    async def serve(self) -> int:
        """Run the loops until a signal or a loop failure; return the process exit code."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        tasks = [asyncio.create_task(fn(), name=f"{self.name}-{i}") for i, fn in enumerate(self.loops)]
        stop_waiter = asyncio.create_task(stop.wait())
        exit_code = 0
        try:
            done, _ = await asyncio.wait([*tasks, stop_waiter], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stop_waiter and task.exception() is not None:
                    log.error("loop failed", service=self.name, error=repr(task.exception()))
                    exit_code = 1
            log.info("stopping", service=self.name)
            for stopper in self.stoppers:
                stopper()
            _, pending = await asyncio.wait(tasks, timeout=self.shutdown_grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        finally:
            stop_waiter.cancel()
            await self.close()
        log.info("stopped", service=self.name, exit_code=exit_code)
        return exit_code


def run(bootstrap: Callable[[], Coroutine[Any, Any, Runtime]]) -> None:
    async def main() -> int:
        runtime = await bootstrap()
        return await runtime.serve()

    try:
        code = asyncio.run(main())
    except ValidationError as exc:  # settings: say which and why (secret values are never echoed), no traceback
        print(f"refusing to start: invalid settings: {describe_validation_error(exc)}", file=sys.stderr)
        code = 2
    sys.exit(code)
