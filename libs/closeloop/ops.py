"""Health, readiness and Prometheus metrics over HTTP, for every long-running service.

`/healthz` answers while the process's event loop runs; `/readyz` runs the service's readiness
checks (broker reachable, database reachable, partitions assigned) and answers 503 naming the
failing ones; `/metrics` is the Prometheus text format.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from closeloop.metrics import ServiceMetrics

ReadinessCheck = Callable[[], Awaitable[bool]]
CHECK_TIMEOUT_S = 2.0


class Readiness:
    def __init__(self) -> None:
        self._checks: dict[str, ReadinessCheck] = {}

    def add(self, name: str, check: ReadinessCheck) -> None:
        self._checks[name] = check

    async def failing(self) -> list[str]:
        failing = []
        for name, check in self._checks.items():
            try:
                ok = await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
            except Exception:  # a check that raises means "not ready", never a crash
                ok = False
            if not ok:
                failing.append(name)
        return failing


def add_ops_routes(app: web.Application, metrics: ServiceMetrics, readiness: Readiness) -> None:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "service": metrics.service})

    async def readyz(_: web.Request) -> web.Response:
        failing = await readiness.failing()
        status = 200 if not failing else 503
        return web.json_response(
            {"status": "ready" if not failing else "not ready", "failing": failing, "service": metrics.service},
            status=status,
        )

    async def metrics_view(_: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)


class HttpServer:
    """Runs an aiohttp application on host:port; port 0 picks a free port (see `.port`)."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self._runner = web.AppRunner(app, access_log=None)
        self._host = host
        self._port = port
        self.port = port

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        # Resolve the port actually bound when asked for 0.
        for address in self._runner.addresses:
            self.port = int(address[1])
            break

    async def stop(self) -> None:
        await self._runner.cleanup()
