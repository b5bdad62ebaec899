"""Live updates of a run page: server-sent events from ``AsyncRuns.follow``.

``GET /runs/{id}/events?after=P`` streams what the run records after position ``P`` (the last
one the page was rendered with): ``log`` events (the task, level, stream and text as JSON, its
control characters shown as escapes as on the rendered page — the page inserts it as text,
never as HTML), ``state`` events (the run's and its tasks' states, after any fact that is not a log
line), and one ``end`` event when the run is terminal, after
which the stream closes (a terminal run's log is frozen). ``follow`` sees other processes'
appends within its poll interval (half a second), so a new line shows within a second.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Final

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from lifecycle import events as ev
from lifecycle._draw import visible
from lifecycle._views import RunView

from ._context import Settings

__all__ = ["ROUTES", "sse"]

_encoder = msgspec.json.Encoder()


def sse(event: str, data: Any) -> bytes:
    """One server-sent event: its name and JSON data (one line: JSON escapes newlines)."""
    return b"event: " + event.encode() + b"\ndata: " + _encoder.encode(data) + b"\n\n"


def _states(view: RunView) -> dict[str, Any]:
    return {
        "state": view.state,
        "outcome": view.outcome,
        "warning": view.warning,
        "terminal": view.terminal,
        "tasks": {
            name: {"state": c.state, "outcome": c.outcome, "attempt": c.attempt}
            for name, c in view.containers.items()
        },
    }


async def events(request: Request) -> Response:
    cfg: Settings = request.app.state.ui
    runs = cfg.runs
    assert runs is not None
    run_id = int(request.path_params["run_id"])
    try:
        after = int(request.query_params.get("after", "0"))
    except ValueError:
        after = 0
    await runs.get(run_id)  # UnknownRun → 404 before the stream starts

    async def stream() -> AsyncIterator[bytes]:
        async for record in runs.follow(run_id):
            if record.position <= after:
                continue
            _, slash, task = record.stream.partition("/")
            fact = record.event
            if isinstance(fact, ev.LogRecorded):
                yield sse(
                    "log",
                    {
                        "task": task if slash else None,
                        "position": record.position,
                        "at": record.recorded_at.isoformat(),
                        "level": fact.level,
                        "stream": fact.stream,
                        "text": visible(fact.text),
                    },
                )
            else:
                yield sse("state", _states(await runs.get(run_id)))
        yield sse("end", _states(await runs.get(run_id)))

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


ROUTES: Final = [Route("/runs/{run_id:int}/events", events, name="events")]
