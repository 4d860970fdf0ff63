"""Local aiohttp servers that serve the Okta Groups/Users and GitHub Teams endpoints the executors call.

They keep real state (group and team memberships), record every request with its headers, and can be
told to fail the next N requests with a status (429 with Retry-After, 500, 403 ...).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from aiohttp import web

from closeloop.ops import HttpServer


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: object = None


@dataclass
class FakeApi:
    requests: list[Seen] = field(default_factory=list)
    failures: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    server: HttpServer | None = None

    def fail_next(self, status: int, times: int = 1, headers: dict[str, str] | None = None) -> None:
        for _ in range(times):
            self.failures.append((status, headers or {}))

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}"

    async def _record(self, request: web.Request) -> web.Response | None:
        body = await request.json() if request.can_read_body else None
        self.requests.append(Seen(request.method, request.path, dict(request.headers), body))
        if self.failures:
            status, headers = self.failures.popleft()
            return web.json_response({"error": "injected"}, status=status, headers=headers)
        return None

    async def start(self, app: web.Application) -> None:
        self.server = HttpServer(app, "127.0.0.1", 0)
        await self.server.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()


@dataclass
class FakeOkta(FakeApi):
    token: str = "okta-test-token-0123456789abcdef"
    users: dict[str, str] = field(default_factory=dict)  # login -> id
    groups: dict[str, set[str]] = field(default_factory=dict)  # group id -> user ids

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"SSWS {self.token}"

    async def start_okta(self) -> FakeOkta:
        app = web.Application()
        app.router.add_get("/api/v1/users/{login}", self._get_user)
        app.router.add_put("/api/v1/groups/{group}/users/{user}", self._add)
        app.router.add_delete("/api/v1/groups/{group}/users/{user}", self._remove)
        await self.start(app)
        return self

    async def _get_user(self, request: web.Request) -> web.Response:
        if (failure := await self._record(request)) is not None:
            return failure
        if not self._authorized(request):
            return web.json_response({"errorCode": "E0000011"}, status=401)
        login = request.match_info["login"]
        if login not in self.users:
            return web.json_response({"errorCode": "E0000007", "errorSummary": "Not found"}, status=404)
        return web.json_response({"id": self.users[login], "profile": {"login": login}})

    async def _add(self, request: web.Request) -> web.Response:
        if (failure := await self._record(request)) is not None:
            return failure
        if not self._authorized(request):
            return web.json_response({"errorCode": "E0000011"}, status=401)
        group, user = request.match_info["group"], request.match_info["user"]
        if group not in self.groups or user not in self.users.values():
            return web.json_response({"errorCode": "E0000007"}, status=404)
        self.groups[group].add(user)
        return web.Response(status=204)

    async def _remove(self, request: web.Request) -> web.Response:
        if (failure := await self._record(request)) is not None:
            return failure
        if not self._authorized(request):
            return web.json_response({"errorCode": "E0000011"}, status=401)
        group, user = request.match_info["group"], request.match_info["user"]
        if group not in self.groups or user not in self.groups[group]:
            return web.json_response({"errorCode": "E0000007"}, status=404)
        self.groups[group].discard(user)
        return web.Response(status=204)


@dataclass
class FakeGitHub(FakeApi):
    token: str = "ghp_testtoken0123456789abcdefghijklmnop"
    org_members: set[str] = field(default_factory=set)
    teams: dict[str, dict[str, str]] = field(default_factory=dict)  # "org/slug" -> login -> role

    async def start_github(self) -> FakeGitHub:
        app = web.Application()
        route = "/orgs/{org}/teams/{slug}/memberships/{user}"
        app.router.add_put(route, self._put)
        app.router.add_delete(route, self._delete)
        await self.start(app)
        return self

    def _check(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"message": "Bad credentials"}, status=401)
        if not request.headers.get("X-GitHub-Api-Version"):
            return web.json_response({"message": "missing api version"}, status=400)
        return None

    async def _put(self, request: web.Request) -> web.Response:
        if (failure := await self._record(request)) is not None:
            return failure
        if (denied := self._check(request)) is not None:
            return denied
        team = f"{request.match_info['org']}/{request.match_info['slug']}"
        if team not in self.teams:
            return web.json_response({"message": "Not Found"}, status=404)
        body = self.requests[-1].body
        role = body.get("role", "member") if isinstance(body, dict) else "member"
        user = request.match_info["user"]
        self.teams[team][user] = role
        state = "active" if user in self.org_members else "pending"
        return web.json_response({"url": str(request.url), "role": role, "state": state})

    async def _delete(self, request: web.Request) -> web.Response:
        if (failure := await self._record(request)) is not None:
            return failure
        if (denied := self._check(request)) is not None:
            return denied
        team = f"{request.match_info['org']}/{request.match_info['slug']}"
        user = request.match_info["user"]
        if team not in self.teams or user not in self.teams[team]:
            return web.json_response({"message": "Not Found"}, status=404)
        del self.teams[team][user]
        return web.Response(status=204)
