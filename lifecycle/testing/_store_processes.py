"""The store checks that open the store again: after closing it, from several OS processes
racing on shared streams, and after a writer process is killed with SIGKILL mid-write.

The writers are :mod:`._store_worker` processes (``sys.executable -m``). Every one is killed and
reaped when its check ends, passes or fails, and each ends by itself when its stdin closes.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import random
import signal
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

import lifecycle
from lifecycle import events as ev
from lifecycle._stores import RunSummary, Write, open_store

from ._store_support import (
    Acknowledged,
    MakeStore,
    StoreCheck,
    assert_records,
    deadline,
    fresh_url,
    log,
    reconcile_race,
    store_check,
)

__all__ = ["PROCESS_CHECKS"]

PROCESS_CHECKS: list[tuple[str, StoreCheck]] = []
"""``(name, check)`` for the checks that need a store URL other processes can open."""

_WORKER = "lifecycle.testing._store_worker"
_ROOT = str(Path(lifecycle.__file__).resolve().parent.parent)  # where workers import us from


def _check(name: str) -> Callable[[Callable[[MakeStore], Awaitable[None]]], StoreCheck]:
    return store_check(name, PROCESS_CHECKS)


class _Child:
    """One worker process: the JSON lines it printed so far and the tail of its stderr."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.lines: list[dict[str, Any]] = []
        self.stderr = b""
        self.closed = False  # stdout reached its end
        self._changed = anyio.Event()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def pump(self) -> None:
        assert self.process.stdout is not None
        stdout = BufferedByteReceiveStream(self.process.stdout)
        try:
            while True:
                line = await stdout.receive_until(b"\n", 1 << 24)
                self.lines.append(json.loads(line))
                self._notify()
        except (anyio.EndOfStream, anyio.IncompleteRead):
            pass  # a line cut short by SIGKILL was never acknowledged
        finally:
            self.closed = True
            self._notify()

    async def drain_stderr(self) -> None:
        assert self.process.stderr is not None
        with suppress(anyio.EndOfStream):
            async for chunk in self.process.stderr:
                self.stderr = (self.stderr + chunk)[-4000:]

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait until ``condition()`` holds, or stdout ended."""
        while not condition() and not self.closed:
            await self._changed.wait()

    def count(self, key: str) -> int:
        return sum(key in line for line in self.lines)

    def kill(self) -> None:
        if self.process.returncode is None:
            with suppress(ProcessLookupError):
                self.process.kill()

    def why(self) -> str:
        errors = [line["error"] for line in self.lines if "error" in line]
        text = self.stderr.decode(errors="replace").strip()
        return "; ".join(errors[:3]) or text[-1500:] or "(no output)"


@asynccontextmanager
async def _workers(
    mode: str, url: str, args: Sequence[dict[str, Any]]
) -> AsyncIterator[list[_Child]]:
    """Start one worker per ``args``; on the way out kill and reap every one of them."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [_ROOT, os.environ.get("PYTHONPATH")])),
    }
    children: list[_Child] = []
    try:
        async with anyio.create_task_group() as tg:
            try:
                for a in args:
                    command = [sys.executable, "-m", _WORKER, mode, url, json.dumps(a)]
                    child = _Child(await anyio.open_process(command, env=env))
                    children.append(child)
                    tg.start_soon(child.pump)
                    tg.start_soon(child.drain_stderr)
                yield children
            finally:
                for child in children:
                    child.kill()
    finally:
        with anyio.CancelScope(shield=True):
            for child in children:
                child.kill()
                await child.process.wait()
                await child.process.aclose()


async def _all_ready(children: Sequence[_Child]) -> None:
    for child in children:
        await child.until(lambda c=child: c.count("ready") > 0)  # type: ignore[misc]
        assert child.count("ready"), f"a writer process did not start: {child.why()}"


# -- reopen ---------------------------------------------------------------------------------------


@_check("reopen")
async def check_reopen(make_store: MakeStore) -> None:
    """Closed and opened again by URL, the store holds everything it acknowledged — log, read
    model, blobs, leases — keeps handing out new run ids, and still recognises retries."""
    url = await fresh_url(make_store, "reopen")
    created = _dt.datetime(2024, 5, 1, tzinfo=_dt.UTC)
    async with open_store(url) as store:
        assert await store.read_all() == [], f"{url} is not a fresh store"
        run_ids = [await store.next_run_id() for _ in range(3)]
        summary = RunSummary(
            run_id=run_ids[0], dialect="domino", operation="run", name="kept", state="Queued",
            outcome=None, terminal=False, warning=False, created_at=created,
        )  # fmt: skip
        batch = [
            Write(
                stream="run-1",
                events=(ev.Requested(dialect="domino"),),
                expected_version=0,
                event_ids=("r0",),
            ),
            Write(stream="run-1/c", events=(log("c1"), log("c2")), event_ids=("r1", "r2")),
        ]
        records = await store.append(batch, summaries=[summary])
        records += await store.append([Write(stream="run-1", events=(log("x"),))])
        await store.put_blob("results/1", b"\x00kept\xff")
        assert await store.acquire_lease(run_ids[0], "engine-a", 600)
        leases = await store.leases()
    async with open_store(url) as store:
        assert_records(await store.read_all(), records, f"read_all() after reopening {url}")
        assert await store.list_runs() == [summary], "the read model did not survive reopening"
        assert await store.get_blob("results/1") == b"\x00kept\xff", "the blob did not survive"
        got = [(x.run_id, x.owner) for x in await store.leases()]
        assert got == [(x.run_id, x.owner) for x in leases], f"leases after reopening: {got}"
        assert not await store.acquire_lease(run_ids[0], "engine-b", 60), "the lease was lost"
        new_id = await store.next_run_id()
        assert new_id > max(run_ids), f"run id {new_id} after reopening; {run_ids} were given"
        assert_records(await store.append(batch), records[:3], "a retry after reopening")
        (more,) = await store.append(
            [Write(stream="run-1", events=(log("y"),), expected_version=2)]
        )
        assert more.version == 3, f"the stream does not continue where it stopped: {more}"
        assert more.position > records[-1].position, f"the log does not continue: {more}"


# -- writers in several processes -----------------------------------------------------------------


@_check("process_writers")
async def check_process_writers(make_store: MakeStore) -> None:
    """Writers in three OS processes race on shared streams with the versions they read: every
    acknowledged record is stored as acknowledged, no refused one, versions stay dense, and
    every ``ConcurrencyError`` was a real conflict."""
    url = await fresh_url(make_store, "procs")
    workers, attempts, streams = 3, 30, ["p0", "p1", "p2"]
    args = [{"worker": w, "streams": streams, "attempts": attempts} for w in range(workers)]
    async with open_store(url) as store:  # the store exists before the writers open it
        with deadline(120, f"{workers} writer processes"):
            async with _workers("race", url, args) as children:
                await _all_ready(children)
                for child in children:
                    assert child.process.stdin is not None
                    await child.process.stdin.send(b"go\n")
                for child in children:
                    await child.until(lambda c=child: c.count("done") > 0)  # type: ignore[misc]
                    code = await child.process.wait()
                    assert code == 0, f"a writer process failed ({code}): {child.why()}"
                    assert child.count("done"), f"a writer process stopped early: {child.why()}"
        lines = [line for child in children for line in child.lines]
        errors = [line["error"] for line in lines if "error" in line]
        assert not errors, f"appends failed with other errors than ConcurrencyError: {errors[:3]}"
        won: list[tuple[list[Acknowledged], dict[str, int]]] = [
            ([(s, v, p, i) for s, v, p, i in line["ok"]], line["expected"])
            for line in lines
            if "ok" in line
        ]
        lost = [(line["lost"], line["expected"]) for line in lines if "lost" in line]
        reconcile_race(await store.read_all(), won, lost, workers * attempts)


# -- crash ----------------------------------------------------------------------------------------


@_check("crash")
async def check_crash(make_store: MakeStore) -> None:
    """A writer process (four concurrent writer tasks) is killed with SIGKILL mid-stream, twice;
    opened again, the store holds every append the writer acknowledged, each batch whole or
    not at all, versions dense — and it takes new appends at once."""
    url = await fresh_url(make_store, "crash")
    async with open_store(url) as store:
        assert await store.read_all() == [], f"{url} is not a fresh store"
    acknowledged: list[Acknowledged] = []
    last_batch: dict[tuple[str, int], int] = {}
    rng = random.Random()
    for round_ in range(2):
        tag, tasks = f"r{round_}", 4
        with deadline(60, "a writer process until it is killed"):
            async with _workers("crash", url, [{"tag": tag, "tasks": tasks}]) as (child,):
                await _all_ready([child])
                enough = rng.randint(20, 60)
                await child.until(lambda n=enough: child.count("ok") >= n)  # type: ignore[misc]
                assert not child.closed, f"the writer process stopped by itself: {child.why()}"
                child.kill()  # SIGKILL, in the middle of whatever it was writing
                code = await child.process.wait()
                await child.until(lambda: False)  # read what it printed before it died
        assert code == -signal.SIGKILL, f"the writer exited with {code} before it was killed"
        for line in child.lines:
            if "ok" in line:
                acknowledged += [(s, v, p, i) for s, v, p, i in line["ok"]]
                t, n = line["batch"]
                last_batch[tag, t] = max(last_batch.get((tag, t), -1), n)
        with deadline(30, "reopening the store after a crash"):
            async with open_store(url) as store:
                stored = await store.read_all()
                _check_after_crash(stored, acknowledged, last_batch)
                head = [r for r in stored if r.stream == "crash-0"]
                (more,) = await store.append(
                    [Write(stream="crash-0", events=(log("after"),), expected_version=len(head))]
                )
                assert more.position > stored[-1].position, f"the log did not continue: {more}"


def _check_after_crash(
    stored: Sequence[ev.Recorded],
    acknowledged: Sequence[Acknowledged],
    last_batch: dict[tuple[str, int], int],
) -> None:
    by_id = {r.event_id: r for r in stored}
    assert len(by_id) == len(stored), "after the crash an event id is stored twice"
    for stream, version, position, event_id in acknowledged:
        r = by_id.get(event_id)
        assert r is not None, (
            f"{stream}@v{version} #{position} ({event_id}) was acknowledged before the crash "
            "and is gone: an append must be acknowledged only after it is committed"
        )
        assert (r.stream, r.version, r.position) == (stream, version, position), (
            f"{event_id} was acknowledged as {stream}@v{version} #{position}; now {r}"
        )
    heads: dict[str, int] = {}
    for r in stored:
        assert r.version == heads.get(r.stream, 0) + 1, f"after the crash {r.stream} has a hole"
        heads[r.stream] = r.version
    positions = [r.position for r in stored]
    assert positions == sorted(set(positions)), "after the crash positions are out of order"
    batches: dict[tuple[str, int, int], list[str]] = defaultdict(list)
    for r in stored:
        if r.event_id.count(".") == 3 and "/" in r.event_id:  # TAG.TASK.BATCH.J/TOTAL
            g, t, b, _ = r.event_id.split(".")
            batches[g, int(t), int(b)].append(r.event_id)
    for (group, task, batch), ids in batches.items():
        total = int(ids[0].rpartition("/")[2])
        assert len(ids) == total, (
            f"batch {batch} of writer {group}.{task} is half-written after the crash: "
            f"{len(ids)} of {total} facts stored ({ids}); an append must be all or nothing"
        )
    for (group, task), last in last_batch.items():
        present = sorted(b for (g, t, b) in batches if (g, t) == (group, task))
        assert present == list(range(len(present))), (
            f"writer {group}.{task}: batches {present} survived; a sequential writer's batches "
            "must survive as a prefix"
        )
        assert last < len(present) <= last + 2, (
            f"writer {group}.{task}: {len(present)} batches survived, {last + 1} were "
            "acknowledged (at most one more may have been committed without its acknowledgement)"
        )
