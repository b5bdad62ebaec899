"""The dashboard's Starlette application: its routes, its lifespan, its guard (token, CSRF).

``create_app(store, token=..., read_only=...)`` returns an ASGI app. Its lifespan opens the run
service on ``store`` (a URL, or an ``AsyncRuns`` already open — how a ``memory://`` store is
shared within one process) and a task group for the work actions start (a rerun runs its
workflow here, on the server's loop).

The guard, like Jupyter's: every page but ``/static`` needs the token printed at start. It comes
once in the URL (``/?token=…``), is exchanged for an HttpOnly, SameSite=Strict cookie, and the
browser is sent to the same page without it (so it is not left in the history or a
screenshot). Actions are ``POST`` forms that must also carry the CSRF token the pages embed
(derived from the token, so it survives restarts with the same token); a request whose
``Origin`` is another site is refused whatever it carries. ``read_only`` refuses every action.
"""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

import anyio
from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from lifecycle._errors import InvalidTransition, LifecycleError, UnknownRun
from lifecycle._runs import AsyncRuns
from lifecycle._stores import RunStore
from lifecycle._workflow._dag import WorkflowError

from . import _actions, _live, _pages
from ._context import HERE, Settings, new_token, render

__all__ = ["COOKIE", "create_app"]

COOKIE: Final = "lifecycle_ui"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _Guard:
    """ASGI middleware: the token (query once, then cookie) for every path but ``/static``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = next((v for k, v in query if k == "token"), None)
        if given is not None and hmac.compare_digest(given.encode(), self.token.encode()):
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            path = "/" + scope["path"].lstrip("/")  # never "//host": a redirect stays here
            target = scope.get("root_path", "") + path + (f"?{rest}" if rest else "")
            response: Response = RedirectResponse(target, status_code=303)
            response.set_cookie(
                COOKIE, self.token, httponly=True, samesite="strict", path="/", max_age=30 * 86400
            )
            await response(scope, receive, send)
            return
        cookie = SimpleCookie()
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                with contextlib.suppress(Exception):
                    cookie.load(value.decode("latin-1"))
        held = cookie.get(COOKIE)
        if held is not None and hmac.compare_digest(held.value.encode(), self.token.encode()):
            await self.app(scope, receive, send)
            return
        response = HTMLResponse(
            "<!doctype html><title>lifecycle ui: token needed</title>"
            "<p>Open the address <code>lifecycle ui</code> printed when it started "
            "(it ends with <code>?token=…</code>).</p>",
            status_code=401,
        )
        await response(scope, receive, send)


async def _not_found(request: Request, exc: Exception) -> Response:
    return render(request, "error.html", 404, title="Not found", message=str(exc))


async def _conflict(request: Request, exc: Exception) -> Response:
    return render(request, "error.html", 409, title="Cannot do that now", message=str(exc))


async def _refused(request: Request, exc: Exception) -> Response:
    return render(request, "error.html", 400, title="Cannot do that", message=str(exc))


def create_app(
    store: str | RunStore | AsyncRuns, *, token: str | None = None, read_only: bool = False
) -> Starlette:
    """The dashboard on ``store`` (a URL, or an open ``AsyncRuns`` shared with the caller)."""
    cfg = Settings(token or new_token(), read_only)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if isinstance(store, AsyncRuns):
                cfg.runs = store
            else:
                from lifecycle._cli._base import Settings as CliSettings  # noqa: PLC0415
                from lifecycle._cli._base import open_runs  # noqa: PLC0415

                cfg.runs = await stack.enter_async_context(
                    open_runs(CliSettings(store=store), write=not read_only)
                )
            cfg.tasks = await stack.enter_async_context(anyio.create_task_group())
            yield
            cfg.tasks.cancel_scope.cancel()

    routes = [
        *_pages.ROUTES,
        *_live.ROUTES,
        *_actions.ROUTES,
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=[r for r in routes if isinstance(r, Route | Mount)],
        lifespan=lifespan,
        exception_handlers={
            UnknownRun: _not_found,
            InvalidTransition: _conflict,
            WorkflowError: _refused,
            LifecycleError: _refused,
        },
    )
    app.state.ui = cfg
    # a jobs page of many jobs is mostly repeated SVG: it compresses ~10×; live events are not
    # compressed (Starlette leaves text/event-stream alone)
    app.add_middleware(GZipMiddleware, minimum_size=2048)
    app.add_middleware(_Guard, token=cfg.token)
    return app
