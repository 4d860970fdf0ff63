"""/healthz, /readyz and /metrics either share a service's public listener (the default) or get their own,
so the public port exposes the webhooks alone."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from closeloop.metrics import ServiceMetrics
from closeloop.ops import HttpServer, Readiness
from closeloop.runtime import Runtime
from closeloop.service_wiring import serve_ops
from connectors.settings import ConnectorsSettings
from request_intake.settings import IntakeSettings


async def _hello(_: web.Request) -> web.Response:
    return web.Response(text="hook")


async def _statuses(port: int) -> dict[str, int]:
    async with aiohttp.ClientSession() as session:
        statuses = {}
        for path in ("/metrics", "/readyz", "/healthz", "/v1/hooks/x"):
            async with (
                session.post(f"http://127.0.0.1:{port}{path}")
                if path.startswith("/v1")
                else session.get(f"http://127.0.0.1:{port}{path}") as response
            ):
                statuses[path] = response.status
        return statuses


async def _public(runtime: Runtime, separate_port: int | None) -> tuple[HttpServer, HttpServer | None]:
    app = web.Application()
    app.router.add_post("/v1/hooks/x", _hello)
    ops = await serve_ops(runtime, app, ServiceMetrics("t"), Readiness(), "127.0.0.1", separate_port)
    public = HttpServer(app, "127.0.0.1", 0)
    await public.start()
    runtime.closers.append(public.stop)
    return public, ops


async def test_by_default_ops_routes_share_the_public_listener() -> None:
    runtime = Runtime("t")
    try:
        public, ops = await _public(runtime, None)
        assert ops is None
        assert await _statuses(public.port) == {"/metrics": 200, "/readyz": 200, "/healthz": 200, "/v1/hooks/x": 200}
    finally:
        await runtime.close()


async def test_a_separate_ops_port_takes_them_off_the_public_listener() -> None:
    runtime = Runtime("t")
    try:
        public, ops = await _public(runtime, 0)
        assert ops is not None
        assert ops.port != public.port
        public_statuses = await _statuses(public.port)
        assert public_statuses["/v1/hooks/x"] == 200
        assert {public_statuses[p] for p in ("/metrics", "/readyz", "/healthz")} == {404}
        ops_statuses = await _statuses(ops.port)
        assert (ops_statuses["/metrics"], ops_statuses["/readyz"], ops_statuses["/healthz"]) == (200, 200, 200)
        assert ops_statuses["/v1/hooks/x"] == 404
    finally:
        await runtime.close()


def test_the_setting_is_off_unless_set() -> None:
    assert ConnectorsSettings().ops_separate_port is None
    assert IntakeSettings().ops_separate_port is None
    assert ConnectorsSettings(ops_separate_port=9481).ops_separate_port == 9481
