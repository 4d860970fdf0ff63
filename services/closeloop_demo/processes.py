"""Start the five services as local processes for the demo, wait until each is ready, stop them after."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from closeloop.settings import state_dir


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    ready_url: str


SERVICES = (
    ServiceSpec("request-intake", "request_intake", "http://127.0.0.1:8480/readyz"),
    ServiceSpec("connectors", "connectors", "http://127.0.0.1:8481/readyz"),
    ServiceSpec("provisioning", "provisioning", "http://127.0.0.1:8482/readyz"),
    ServiceSpec("expiry", "expiry", "http://127.0.0.1:8483/readyz"),
    ServiceSpec("reconciliation", "reconciliation", "http://127.0.0.1:8484/readyz"),
)


class ServiceProcesses:
    def __init__(self, python: str, env: dict[str, str]) -> None:
        self._python = python
        self._env = env
        self._running: dict[str, subprocess.Popen[bytes]] = {}
        self.log_dir = state_dir() / "logs"

    def log_file(self, spec: ServiceSpec) -> Path:
        return self.log_dir / f"demo-{spec.name}.log"

    def start_all(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for spec in SERVICES:
            with self.log_file(spec).open("ab") as log:
                self._running[spec.name] = subprocess.Popen(  # noqa: S603 - our own interpreter and module names
                    [self._python, "-m", spec.module],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self._env,
                    start_new_session=True,
                )

    async def wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session:
            for spec in SERVICES:
                while True:
                    process = self._running[spec.name]
                    if process.poll() is not None:
                        raise RuntimeError(f"{spec.name} exited with {process.returncode}; see {self.log_file(spec)}")
                    try:
                        async with session.get(spec.ready_url) as response:
                            if response.status == 200:
                                break
                    except (aiohttp.ClientError, TimeoutError):
                        pass
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{spec.name} not ready at {spec.ready_url}; see {self.log_file(spec)}")
                    await asyncio.sleep(0.5)

    def stop_all(self, grace_s: float = 15.0) -> None:
        for process in self._running.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for process in self._running.values():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self._running.clear()

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self._running.items()}
