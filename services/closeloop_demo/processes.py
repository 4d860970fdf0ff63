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


# (name, module, default port, the env variable that moves the port)
_SERVICES = (
    ("request-intake", "request_intake", 8480, "CLOSELOOP_INTAKE_HTTP_PORT"),
    ("connectors", "connectors", 8481, "CLOSELOOP_CONNECTORS_OPS_PORT"),
    ("provisioning", "provisioning", 8482, "CLOSELOOP_PROVISIONING_OPS_PORT"),
    ("expiry", "expiry", 8483, "CLOSELOOP_EXPIRY_OPS_PORT"),
    ("reconciliation", "reconciliation", 8484, "CLOSELOOP_RECONCILIATION_OPS_PORT"),
)
PORT_VARIABLES = {name: variable for name, _, _, variable in _SERVICES}


def service_specs(ports: dict[str, int] | None = None) -> tuple[ServiceSpec, ...]:
    """The five services; `ports` moves some of them off their default ports (tests)."""
    ports = ports or {}
    return tuple(
        ServiceSpec(name, module, f"http://127.0.0.1:{ports.get(name, default)}/readyz")
        for name, module, default, _ in _SERVICES
    )


SERVICES = service_specs()


class ServiceProcesses:
    def __init__(
        self,
        python: str,
        env: dict[str, str],
        specs: tuple[ServiceSpec, ...] = SERVICES,
        log_prefix: str = "demo",
    ) -> None:
        self._python = python
        self._env = env
        self._specs = specs
        self._log_prefix = log_prefix
        self._running: dict[str, subprocess.Popen[bytes]] = {}
        self.log_dir = state_dir() / "logs"

    def log_file(self, spec: ServiceSpec) -> Path:
        return self.log_dir / f"{self._log_prefix}-{spec.name}.log"

    def start_all(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for spec in self._specs:
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
            for spec in self._specs:
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
