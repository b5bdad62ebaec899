"""Containers not known at creation (issue 13.1): ``ContainerAdded`` on an active run."""

from __future__ import annotations

from pathlib import Path

import pytest

import lifecycle
from lifecycle import events as ev

pytestmark = pytest.mark.anyio

# names as orchestrators make them: Dask keys (stringified tuples), paths, spaces, unicode
ODD_NAMES = ["('inc-3f2a', 7)", "a/b/c", "load (retry) 2", "ünïcode ✓", "run-1/x"]


@pytest.mark.parametrize(
    ("dialect", "operation", "initial"),
    [("datatailr", None, "Pending"), ("domino", None, "Queued"), ("qualytics", "scan", "Queued")],
)
async def test_a_container_joins_an_active_run_in_its_initial_state(
    dialect: str, operation: str | None, initial: str
) -> None:
    async with lifecycle.AsyncRuns() as runs:
        run = await runs.create(dialect, operation=operation, containers=["a"])
        before = run.state
        view_records = await runs.record(run.id, ev.ContainerAdded(name="b", depends_on=("a",)))
        assert [r.stream for r in view_records] == [f"run-{run.id}", f"run-{run.id}/b"]
        view = await runs.get(run.id)
        assert view.state == before  # the run's state does not change
        assert list(view.containers) == ["a", "b"]
        assert view.containers["b"].state == initial
        await runs.record(run.id, ev.InfrastructureFailed(reason="x"), container="b")
        assert (await runs.get(run.id)).containers["b"].outcome == "failed"


async def test_added_in_the_same_batch_as_its_first_facts() -> None:
    async with lifecycle.AsyncRuns() as runs:
        run = await runs.create("datatailr")
        await runs.record_many(
            run.id,
            [(None, [ev.ContainerAdded(name="t")]), ("t", [ev.ExecutionStarted()])],
        )
        assert (await runs.get(run.id)).containers["t"].state == "Running"


async def test_unknown_container_is_named_as_such() -> None:
    async with lifecycle.AsyncRuns() as runs:
        run = await runs.create("datatailr", containers=["a"])
        with pytest.raises(lifecycle.UnknownContainer) as caught:
            await runs.record(run.id, ev.ExecutionStarted(), container="zz")
        assert (caught.value.run_id, caught.value.container) == (run.id, "zz")
        assert not isinstance(caught.value, lifecycle.UnknownRun)
        assert "ContainerAdded" in str(caught.value)


async def test_refusals_write_nothing() -> None:
    async with lifecycle.AsyncRuns() as runs:
        sync = await runs.create("qualytics", operation="sync")
        with pytest.raises(lifecycle.InvalidTransition, match="sync runs have no containers"):
            await runs.record(sync.id, ev.ContainerAdded(name="x"))
        run = await runs.create("datatailr", containers=["a"])
        with pytest.raises(lifecycle.InvalidTransition, match="already has a container 'a'"):
            await runs.record(run.id, ev.ContainerAdded(name="a"))
        with pytest.raises(lifecycle.InvalidTransition, match="non-empty"):
            await runs.record(run.id, ev.ContainerAdded())
        with pytest.raises(lifecycle.InvalidTransition, match="run-level fact"):
            await runs.record(run.id, ev.ContainerAdded(name="b"), container="a")
        with pytest.raises(lifecycle.InvalidTransition, match="already has a container 'c'"):
            await runs.record(run.id, [ev.ContainerAdded(name="c"), ev.ContainerAdded(name="c")])
        assert list((await runs.get(run.id)).containers) == ["a"]
        assert len(await runs.history(run.id)) == 2
        ended = await runs.abort(run.id)
        assert ended.terminal
        with pytest.raises(lifecycle.StreamClosed):
            await runs.record(run.id, ev.ContainerAdded(name="late"))


async def test_a_run_cannot_end_while_an_added_container_is_active() -> None:
    async with lifecycle.AsyncRuns() as runs:
        run = await runs.create("domino")
        await runs.record(run.id, ev.ContainerAdded(name="x"))
        with pytest.raises(lifecycle.InvalidTransition, match=r"\['x'\] are still active"):
            await runs.record(run.id, ev.InfrastructureFailed(reason="gone"))


async def test_odd_names_round_trip_through_memory() -> None:
    async with lifecycle.AsyncRuns() as runs:
        run = await runs.create("datatailr")
        await runs.record(run.id, [ev.ContainerAdded(name=n) for n in ODD_NAMES])
        for name in ODD_NAMES:
            await runs.record(run.id, ev.ExecutionStarted(), container=name)
        view = await runs.get(run.id)
        assert {n: c.state for n, c in view.containers.items()} == dict.fromkeys(
            ODD_NAMES, "Running"
        )


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # aiosqlite is asyncio-only
async def test_odd_names_round_trip_through_sqlite_and_another_writer(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/runs.db"
    async with lifecycle.AsyncRuns(url) as first, lifecycle.AsyncRuns(url) as second:
        run = await first.create("datatailr", containers=["a"])
        assert (await second.get(run.id)).containers.keys() == {"a"}
        await second.record(run.id, [ev.ContainerAdded(name=n) for n in ODD_NAMES])
        await second.record(run.id, ev.ExecutionStarted(), container=ODD_NAMES[0])
        # the first writer had the run cached: it catches up with the new containers
        view = await first.get(run.id)
        assert list(view.containers) == ["a", *ODD_NAMES]
        assert view.containers[ODD_NAMES[0]].state == "Running"
        await first.record(run.id, ev.ExecutionStarted(), container=ODD_NAMES[1])
    async with lifecycle.AsyncRuns(url) as fresh:  # a cold read of the log
        view = await fresh.get(run.id)
        assert list(view.containers) == ["a", *ODD_NAMES]
        assert [view.containers[n].state for n in ODD_NAMES[:3]] == [
            "Running",
            "Running",
            "Pending",
        ]


def test_blocking_twin_adds_containers() -> None:
    with lifecycle.Runs() as runs:
        run = runs.create("qualytics", operation="profile")
        runs.record(run.id, ev.ContainerAdded(name="orders"))
        assert runs.get(run.id).containers["orders"].state == "Queued"


def test_blocking_twin_has_record_many_and_reconcile() -> None:
    with lifecycle.Runs() as runs:
        run = runs.create("datatailr")
        records = runs.record_many(
            run.id, [(None, [ev.ContainerAdded(name="t")]), ("t", [ev.ExecutionStarted()])]
        )
        assert [r.stream for r in records] == ["run-1", "run-1/t", "run-1/t"]
        assert runs.get(run.id).containers["t"].state == "Running"
        assert runs.reconcile() == []  # no engine holds a lease: nothing to end


@pytest.mark.parametrize("name", ["datatailr", "domino", "qualytics"])
def test_diagrams_mark_container_added_as_an_extension(name: str) -> None:
    assert "ContainerAdded (extension)" in lifecycle.dialect(name).to_mermaid()


@pytest.mark.parametrize("mode", ["rerun", "resume"])
async def test_a_rerun_has_the_containers_added_while_it_ran(mode: str) -> None:
    async with lifecycle.AsyncRuns() as runs:
        run = await runs.create("datatailr", containers=["a"])
        await runs.record(run.id, ev.ContainerAdded(name="late"))
        await runs.finish(run.id, "cancelled", reason="r")
        again = await getattr(runs, mode)(run.id)
        assert list(again.containers) == ["a", "late"]
