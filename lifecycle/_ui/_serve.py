"""Serving the dashboard with uvicorn on one host and port, printing the address to open."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable

import uvicorn

from lifecycle._runs import AsyncRuns
from lifecycle._stores import RunStore

from ._app import create_app
from ._context import new_token

__all__ = ["serve", "url_of"]


def url_of(host: str, port: int, token: str) -> str:
    """The address to open: ``http://HOST:PORT/?token=…`` (IPv6 hosts in brackets)."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/?token={token}"


def serve(
    store: str | RunStore | AsyncRuns,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    read_only: bool = False,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve until interrupted. The socket is bound before ``announce(url)`` is called (port 0
    picks a free one), so the address printed is the one that answers."""
    token = token or new_token()
    app = create_app(store, token=token, read_only=read_only)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
    bound = sock.getsockname()[1]
    (announce or (lambda url: print(url, file=sys.stderr, flush=True)))(url_of(host, bound, token))
    config = uvicorn.Config(
        app,
        log_level="warning",
        timeout_graceful_shutdown=2,  # live logs are open streams: do not wait on them for long
        lifespan="on",
    )
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
