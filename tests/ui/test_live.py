"""Server-sent events of a run: its log lines and states after a position, then its end."""

from __future__ import annotations

import json

from starlette.testclient import TestClient

from lifecycle import events as ev
from lifecycle._runs import AsyncRuns

from ._support import HOSTILE, Made
from .conftest import portal


def _events(client: TestClient, path: str) -> list[tuple[str, dict[str, object]]]:
    out = []
    with client.stream("GET", path) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in answer.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                out.append((name, json.loads(line[len("data: ") :])))
    return out


def test_an_ended_run_streams_its_log_then_ends(
    reader: TestClient, recorded: tuple[str, Made]
) -> None:
    _, made = recorded
    got = _events(reader, f"/runs/{made.warned}/events")
    logs = [data for name, data in got if name == "log"]
    assert [(d["task"], d["text"]) for d in logs] == [
        (None, HOSTILE.replace("\x1b", "\\x1b")),  # inserted as text, ESC made visible
        ("orders", "orders rows: 12"),
        ("customers", "customers rows: 12"),
    ]
    assert got[-1][0] == "end"
    assert got[-1][1]["state"] == "Success"
    assert [n for n, _ in got].count("end") == 1


def test_only_what_comes_after_the_position(reader: TestClient, recorded: tuple[str, Made]) -> None:
    _, made = recorded
    every = _events(reader, f"/runs/{made.warned}/events")
    after = max(int(str(d["position"])) for n, d in every if n == "log" and d["task"] == "orders")
    later = _events(reader, f"/runs/{made.warned}/events?after={after}")
    assert [d["text"] for n, d in later if n == "log"] == ["customers rows: 12"]


def test_an_active_run_streams_new_lines_until_it_ends(
    actor: TestClient, fresh: tuple[str, Made]
) -> None:
    url, made = fresh
    page = actor.get(f"/runs/{made.active}").text
    live = page.split('data-live="')[1].split('"')[0].replace("&amp;", "&")

    async def later() -> None:  # another writer: a new line, then the run ends
        async with AsyncRuns(url) as runs:
            await runs.record(
                made.active, ev.LogRecorded(level="info", stream="stdout", text="new")
            )
            await runs.record(made.active, ev.ExecutionSucceeded())

    portal(actor).start_task_soon(later)
    got = _events(actor, live)
    assert [d["text"] for n, d in got if n == "log"] == ["new"]  # not "started": rendered already
    assert ("state", "Succeeded") in [(n, d.get("state")) for n, d in got]
    assert got[-1][0] == "end"
