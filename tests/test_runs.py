"""The run service on memory://, on asyncio and trio, and its blocking twin."""

from __future__ import annotations

import contextlib
import datetime as dt

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lifecycle
from lifecycle import events as ev
from lifecycle._canonical import START_SEQUENCE
from lifecycle._stores import Write

pytestmark = pytest.mark.anyio


async def test_contract_example() -> None:
    async with lifecycle.AsyncRuns("memory://") as runs:
        run = await runs.create(
            "qualytics", operation="profile", containers=["orders", "customers"], name="nightly"
        )
        assert (run.state, set(run.containers)) == ("Queued", {"orders", "customers"})
        await runs.record(run.id, ev.ExecutionStarted())
        await runs.record(run.id, ev.ExecutionStarted(), container="orders")
        view = await runs.get(run.id)
        assert view.state == "Running" and view.containers["orders"].state == "Running"
        assert view.containers["customers"].state == "Queued"
        page = await runs.list(name="nightly", start_time=dt.datetime.now(dt.UTC) - dt.timedelta(1))
        assert [s.run_id for s in page] == [run.id]
        again = await runs.abort(run.id)
        assert again.state == "Aborted"
        assert {c.state for c in again.containers.values()} == {"Aborted"}
        rerun = await runs.rerun(run.id)
        assert (rerun.mode, rerun.original_run_id, rerun.root_run_id) == ("rerun", run.id, run.id)
        assert rerun.state == "Queued" and set(rerun.containers) == {"orders", "customers"}


async def test_invalid_fact_writes_nothing() -> None:
    async with lifecycle.AsyncRuns() as runs:
        run = await runs.create("qualytics", operation="scan")
        before = await runs.history(run.id)
        with pytest.raises(lifecycle.InvalidTransition, match="in state 'Success'"):
            await runs.record(
                run.id,
                [
                    ev.ExecutionStarted(),
                    ev.ExecutionStarted(),
                    ev.ExecutionSucceeded(),
                    ev.LogRecorded(),
                ],
            )
        assert await runs.history(run.id) == before
        assert (await runs.get(run.id)).version == 1


async def test_terminal_is_final_and_logs_freeze() -> None:
    async with lifecycle.AsyncRuns() as runs:
        run = await runs.create("qualytics", operation="promote")
        await runs.record(run.id, [ev.LogRecorded(text="go"), ev.ExecutionSucceeded()])
        with pytest.raises(lifecycle.StreamClosed, match="terminal is final"):
            await runs.record(run.id, ev.LogRecorded(text="late"))
        with pytest.raises(lifecycle.StreamClosed):
            await runs.abort(run.id)


async def test_a_terminal_run_has_only_terminal_containers() -> None:
    async with lifecycle.AsyncRuns() as runs:
        run = await runs.create("datatailr", containers=["a", "b"])
        await runs.record(run.id, START_SEQUENCE)
        await runs.record(run.id, [*START_SEQUENCE, ev.ExecutionSucceeded()], container="a")
        with pytest.raises(lifecycle.InvalidTransition, match=r"Containers \['b'\] are still"):
            await runs.record(run.id, ev.ExecutionSucceeded())
        await runs.record(run.id, ev.Stopped(reason="upstream_failed"), container="b")
        view = await runs.get(run.id)
        assert view.state == "Running"
        # b was cancelled: under datatailr's ``fail`` policy the run cannot succeed (issue 13)
        with pytest.raises(lifecycle.PolicyViolation, match="Container 'b' ended Stopped"):
            await runs.record(run.id, ev.ExecutionSucceeded())
        await runs.record(run.id, ev.Stopped(reason="upstream_failed"))
        assert (await runs.get(run.id)).state == "Stopped"


async def test_containers_only_where_the_dialect_has_them() -> None:
    async with lifecycle.AsyncRuns() as runs:
        with pytest.raises(lifecycle.InvalidTransition, match="have no containers"):
            await runs.create("qualytics", operation="sync", containers=["x"])
        with pytest.raises(lifecycle.InvalidTransition, match="Pass operation="):
            await runs.create("qualytics")
        with pytest.raises(lifecycle.UnknownDialect):
            await runs.create("nope")
        run = await runs.create("qualytics", operation="scan", containers=["x"])
        with pytest.raises(lifecycle.UnknownContainer, match="run 1 has no container 'y'"):
            await runs.record(run.id, ev.ExecutionStarted(), container="y")
        with pytest.raises(lifecycle.UnknownRun):
            await runs.get(999)
        with pytest.raises(lifecycle.InvalidTransition, match="Requested is written by create"):
            await runs.record(run.id, ev.Requested(dialect="qualytics"))


async def test_idempotent_retry_by_event_id() -> None:
    async with lifecycle.AsyncRuns() as runs:
        run = await runs.create("domino")
        first = await runs.record(
            run.id, [ev.ResourcesAssigned(), ev.PreparationStarted()], event_ids=["a1", "a2"]
        )
        again = await runs.record(
            run.id, [ev.ResourcesAssigned(), ev.PreparationStarted()], event_ids=["a1", "a2"]
        )
        assert again == first
        assert (await runs.get(run.id)).version == 3
        with pytest.raises(lifecycle.IdempotencyConflict):
            await runs.record(
                run.id, [ev.ExecutionStarted(), ev.LogRecorded()], event_ids=["a2", "a3"]
            )


async def test_record_many_is_atomic_across_streams_and_idempotent() -> None:
    async with lifecycle.AsyncRuns() as runs:
        run = await runs.create("qualytics", operation="scan", containers=["a", "b"])
        with pytest.raises(lifecycle.InvalidTransition):  # b's fact is fine, the run's is not
            await runs.record_many(
                run.id, [("b", [ev.ExecutionStarted()]), (None, [ev.ExecutionSucceeded()])]
            )
        assert (await runs.get(run.id)).containers["b"].version == 1
        items: list[tuple[str | None, list[ev.Fact]]] = [
            (None, [ev.ExecutionStarted()]),
            ("a", [ev.ExecutionStarted(), ev.LogRecorded()]),
        ]
        first = await runs.record_many(run.id, items, event_ids=["r1", "a1", "a2"])
        assert [r.stream for r in first] == ["run-1", "run-1/a", "run-1/a"]
        assert await runs.record_many(run.id, items, event_ids=["r1", "a1", "a2"]) == first
        view = await runs.get(run.id)
        assert (view.version, view.containers["a"].version) == (2, 3)
        assert view == lifecycle.fold(None, await runs.history(run.id))


async def test_abort_per_dialect() -> None:
    async with lifecycle.AsyncRuns() as runs:
        d = await runs.create("domino")
        await runs.record(
            d.id, [ev.ResourcesAssigned(), ev.PreparationStarted(), ev.ExecutionStarted()]
        )
        stopped = await runs.abort(d.id, by="ann")
        kinds = [type(r.event).__name__ for r in await runs.history(d.id)][-3:]
        assert kinds == ["StopRequested", "StoppingStarted", "Stopped"]
        assert (stopped.state, stopped.reason) == ("Stopped", "user")
        t = await runs.create("datatailr", containers=["t1"])
        assert (await runs.abort(t.id)).containers["t1"].state == "Stopped"


async def test_resume_reuses_succeeded_containers() -> None:
    async with lifecycle.AsyncRuns() as runs:
        run = await runs.create("qualytics", operation="profile", containers=["a", "b"])
        await runs.record(run.id, ev.ExecutionStarted())
        await runs.record(run.id, [ev.ExecutionStarted(), ev.ExecutionSucceeded()], container="a")
        await runs.record(run.id, [ev.ExecutionStarted(), ev.ExecutionFailed()], container="b")
        await runs.record(run.id, ev.ExecutionSucceeded())
        resumed = await runs.resume(run.id)
        assert resumed.mode == "resume" and resumed.original_run_id == run.id
        assert resumed.containers["a"].state == "Success"
        assert resumed.containers["a"].cached_from == run.id
        assert resumed.containers["b"].state == "Queued"
        with pytest.raises(lifecycle.InvalidTransition, match="still active"):
            await runs.rerun(resumed.id)


async def test_follow_tails_until_terminal() -> None:
    async with lifecycle.AsyncRuns(poll_interval=5) as runs:
        run = await runs.create("qualytics", operation="scan", containers=["c"])
        seen: list[str] = []

        async def tail() -> None:
            async for record in runs.follow(run.id):
                seen.append(type(record.event).__name__)

        async with anyio.create_task_group() as tg:
            tg.start_soon(tail)
            await anyio.lowlevel.checkpoint()
            await runs.record(run.id, ev.ExecutionStarted())
            await runs.record(
                run.id, [ev.ExecutionStarted(), ev.LogRecorded(text="x")], container="c"
            )
            await runs.record(run.id, ev.ExecutionSucceeded(), container="c")
            with anyio.fail_after(2):  # the tail must end by itself, promptly
                await runs.record(run.id, ev.ExecutionSucceeded())
        assert seen.count("Requested") == 2 and seen[-1] == "ExecutionSucceeded"
        assert len(seen) == 7


class _CountingWaits(lifecycle.MemoryStore):
    """A memory store that counts ``wait`` calls (how often a follower woke up)."""

    def __init__(self) -> None:
        super().__init__()
        self.waits = 0

    async def wait(self, after: int) -> int:
        self.waits += 1
        return await super().wait(after)


async def test_follow_sleeps_while_other_runs_move_on() -> None:
    """#11.4: once another run had appended later facts, follow() looped on a wait that returned
    at once (it waited past its own run's last position, not the head): 100% CPU, and on
    memory:// with no checkpoint in the loop a cancel scope never took effect."""
    store = _CountingWaits()
    async with lifecycle.AsyncRuns(store, poll_interval=30) as runs:
        quiet = await runs.create("qualytics", operation="scan")
        busy = await runs.create("qualytics", operation="scan")
        await runs.record(busy.id, [ev.ExecutionStarted(), ev.LogRecorded(text="later")])
        seen: list[str] = []
        with anyio.move_on_after(0.3) as scope:  # it must get cancelled: follow never ends here
            async for record in runs.follow(quiet.id):
                seen.append(type(record.event).__name__)
        assert scope.cancelled_caught and seen == ["Requested"]
        assert store.waits <= 2, f"follow() woke {store.waits} times with nothing new for it"
        # and it still sees what comes next for its run, without waiting for the poll interval
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:

                async def tail() -> None:
                    async for record in runs.follow(quiet.id):
                        seen.append(type(record.event).__name__)

                tg.start_soon(tail)
                await anyio.sleep(0.05)
                await runs.record(busy.id, ev.LogRecorded(text="more, elsewhere"))
                await runs.record(quiet.id, [ev.ExecutionStarted(), ev.ExecutionSucceeded()])
        assert seen[-2:] == ["ExecutionStarted", "ExecutionSucceeded"]


async def test_memory_wait_is_a_checkpoint_when_the_head_is_past() -> None:
    """A loop over ``wait`` on memory:// must stay cancellable even when it never blocks."""
    store = lifecycle.MemoryStore()
    await store.append([Write(stream="s", events=(ev.LogRecorded(text="x"),))])
    with anyio.CancelScope() as scope:
        scope.cancel()
        await store.wait(0)
    assert scope.cancelled_caught


async def test_concurrent_writers_decide_from_fresh_state() -> None:
    store = lifecycle.MemoryStore()
    async with lifecycle.AsyncRuns(store) as a, lifecycle.AsyncRuns(store) as b:
        run = await a.create("qualytics", operation="scan")
        await b.record(run.id, ev.ExecutionStarted())  # a's cache is now stale
        await a.record(run.id, ev.ExecutionSucceeded())  # conflict, re-read, still valid
        assert (await b.get(run.id)).state == "Success"
        with pytest.raises(lifecycle.StreamClosed):
            await b.record(run.id, ev.Stopped())


async def test_another_writer_on_another_stream_is_seen() -> None:
    store = lifecycle.MemoryStore()
    async with lifecycle.AsyncRuns(store) as a, lifecycle.AsyncRuns(store) as b:
        run = await a.create("qualytics", operation="scan", containers=["c"])
        await b.record(run.id, ev.ExecutionStarted(), container="c")  # below a's next position
        await a.record(run.id, ev.ExecutionStarted())
        view = await a.get(run.id)
        assert (view.state, view.containers["c"].state) == ("Running", "Running")
        assert view == lifecycle.fold(None, await a.history(run.id))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["run", "c1", "c2"]), max_size=30), st.randoms())
def test_replay_equals_the_live_view(targets: list[str], rnd: object) -> None:
    async def main() -> None:
        async with lifecycle.AsyncRuns() as runs:
            run = await runs.create("qualytics", operation="scan", containers=["c1", "c2"])
            for target in targets:
                view = await runs.get(run.id)
                container = None if target == "run" else target
                state = view.state if container is None else view.containers[target].state
                d = lifecycle.dialect("qualytics")
                options = sorted(
                    cls.__name__ for cls in d.table.rows[state] if cls is not ev.Requested
                )
                if not options:
                    continue
                cls = ev.fact_types()[rnd.choice(options)]  # type: ignore[attr-defined]
                fact = cls(key="k") if cls is ev.ResultStored else cls()
                with contextlib.suppress(lifecycle.InvalidTransition):
                    # rejected only for a run-level end while containers are active
                    await runs.record(run.id, fact, container=container)
            live = await runs.get(run.id)
            replayed = lifecycle.fold(None, await runs.history(run.id))
            assert replayed == live
            if live.terminal:
                assert all(c.terminal for c in live.containers.values())

    anyio.run(main)


def test_blocking_runs() -> None:
    with lifecycle.Runs("memory://") as runs:
        run = runs.create("datatailr", build=True, name="etl")
        runs.record(run.id, [ev.BuildStarted(), ev.BuildSucceeded(version=2)])
        assert runs.get(run.id).state == "Ready"
        stopped = runs.abort(run.id)
        assert stopped.state == "Stopped"
        assert [type(r.event).__name__ for r in runs.follow(run.id)][-1] == "Stopped"
        assert [s.name for s in runs.list()] == ["etl"]
    with pytest.raises(RuntimeError, match="context manager"):
        runs.get(run.id)
