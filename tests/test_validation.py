"""#11.2: no fact whose fields do not have their declared types is ever written — msgspec Structs
do not check them when built — on every write path and every store; nothing is written then, and
the store still reads and exports. On memory:// (asyncio and trio) and SQLite (asyncio only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import lifecycle
from lifecycle import events as ev
from lifecycle._stores import Write

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, anyio_backend: str, tmp_path: Path) -> str:
    if request.param == "sqlite":
        if anyio_backend != "asyncio":
            pytest.skip("aiosqlite runs on asyncio only")
        return f"sqlite:///{tmp_path}/runs.db"
    return "memory://"


BAD: list[tuple[ev.Fact, str, str]] = [
    (ev.LogRecorded(text=b"bytes"), "LogRecorded", "text"),  # type: ignore[arg-type]
    (ev.LogRecorded(stream="nowhere"), "LogRecorded", "stream"),  # type: ignore[arg-type]
    (ev.LogRecorded(level=30), "LogRecorded", "level"),  # type: ignore[arg-type]
    (ev.InfrastructureFailed(reason=None), "InfrastructureFailed", "reason"),  # type: ignore[arg-type]
    (ev.StopRequested(by=object()), "StopRequested", ""),  # type: ignore[arg-type]
    (ev.LogRecorded(text="\ud800"), "LogRecorded", ""),  # cannot be encoded at all
]


async def _still_whole(runs: lifecycle.AsyncRuns, run_id: int, before: int, tmp: Path) -> None:
    """Nothing was written, and the store reads and exports whole."""
    assert len(await runs.history(run_id)) == before
    await runs.get(run_id)
    assert await lifecycle.export(runs.store, tmp / "out.jsonl") == len(await runs.store.read_all())


@pytest.mark.parametrize(("fact", "name", "field"), BAD)
async def test_record_refuses_a_fact_of_wrong_types(
    url: str, fact: ev.Fact, name: str, field: str, tmp_path: Path
) -> None:
    async with lifecycle.AsyncRuns(url) as runs:
        run = await runs.create("domino")
        await runs.record(run.id, ev.ResourcesRequested())
        with pytest.raises(lifecycle.InvalidFact) as caught:
            await runs.record(run.id, fact)
        assert (caught.value.fact, caught.value.field) == (name, field)
        assert str(caught.value).startswith(f"{name}.{field} on " if field else f"{name} on ")
        await _still_whole(runs, run.id, 2, tmp_path)


async def test_record_many_writes_nothing_when_one_fact_is_bad(url: str, tmp_path: Path) -> None:
    async with lifecycle.AsyncRuns(url) as runs:
        run = await runs.create("qualytics", operation="scan", containers=["a"])
        with pytest.raises(lifecycle.InvalidFact, match=r"LogRecorded\.text on 'run-\d+/a'"):
            await runs.record_many(
                run.id,
                [
                    (None, [ev.ExecutionStarted()]),
                    ("a", [ev.ExecutionStarted(), ev.LogRecorded(text=b"x")]),  # type: ignore[arg-type]
                ],
            )
        await _still_whole(runs, run.id, 2, tmp_path)
        await runs.record(run.id, ev.ExecutionStarted())  # and the run goes on
        assert (await runs.get(run.id)).state == "Running"


async def test_create_refuses_params_a_store_cannot_read_back(url: str, tmp_path: Path) -> None:
    async with lifecycle.AsyncRuns(url) as runs:
        unreadable: list[dict[Any, Any]] = [{1: "int key"}, {"big": 2**70}, {"obj": object()}]
        for params in unreadable:
            with pytest.raises(lifecycle.InvalidFact, match="Requested") as caught:
                await runs.create("domino", params=params)
            assert caught.value.field in ("params", "")
        assert await runs.list() == [] and await runs.store.read_all() == []
        run = await runs.create("domino", params={"ok": [1, 2.5, "x", None]})
        await _still_whole(runs, run.id, 1, tmp_path)


async def test_direct_append_refuses_and_writes_nothing(url: str, tmp_path: Path) -> None:
    class Mine(ev.Fact, frozen=True, kw_only=True, tag=True):
        """A fact of someone else's: a store could not decode it back."""

    async with lifecycle.open_store(url) as store:
        await store.append([Write(stream="s", events=(ev.LogRecorded(text="ok"),))])
        for fact in (ev.LogRecorded(text=b"x"), Mine(), "not a fact"):  # type: ignore[arg-type]
            with pytest.raises(lifecycle.InvalidFact, match="nothing was written"):
                await store.append(
                    [
                        Write(stream="s", events=(ev.LogRecorded(text="fine"),)),
                        Write(stream="t", events=(fact,)),  # type: ignore[arg-type]
                    ]
                )
        assert [r.event for r in await store.read_all()] == [ev.LogRecorded(text="ok")]
        assert await lifecycle.export(store, tmp_path / "out.jsonl") == 1


async def test_import_names_the_line_of_a_fact_it_cannot_store(url: str, tmp_path: Path) -> None:
    good: dict[str, Any] = {"type": "Requested", "dialect": "domino"}
    bad: dict[str, Any] = {"type": "Requested", "dialect": "domino", "params": {"n": 2**70}}
    lines = [
        {"stream": "run-1", "version": 1, "position": 1, "event_id": "a",
         "recorded_at": "2025-01-01T00:00:00Z", "event": good},
        {"stream": "run-2", "version": 1, "position": 2, "event_id": "b",
         "recorded_at": "2025-01-01T00:00:00Z", "event": bad},
    ]  # fmt: skip
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    async with lifecycle.open_store(url) as store:
        with pytest.raises(lifecycle.CorruptLog, match=r"in\.jsonl:2: Requested") as caught:
            await lifecycle.import_log(path, store)
        assert caught.value.line == 2
        assert await store.read_all() == []


def test_the_blocking_twin_refuses_too(tmp_path: Path) -> None:
    with lifecycle.Runs(f"sqlite:///{tmp_path}/runs.db") as runs:
        run = runs.create("domino")
        with pytest.raises(lifecycle.InvalidFact, match=r"LogRecorded\.text"):
            runs.record(run.id, ev.LogRecorded(text=b"x"))  # type: ignore[arg-type]
        assert len(runs.history(run.id)) == 1
