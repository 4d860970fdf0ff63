"""Run the `closeloop` CLI as an operator would, with its output piped (not a terminal)."""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner, Result

from closeloop_cli.main import app


async def closeloop(*args: str) -> Result:
    """Invoke `closeloop <args>` in a worker thread (the commands run their own event loop)."""
    result = await asyncio.to_thread(CliRunner().invoke, app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result
