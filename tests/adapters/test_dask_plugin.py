"""``lifecycle_adapters.dask.LifecyclePlugin`` against a real ``LocalCluster`` (issue 13).

One graph of 60+ tasks with a failure and its dependents, a cancelled task, a retried task, a
task whose worker is SIGKILLed mid-run and keys reused from an earlier graph, recorded by three
plugins at once (one per built-in dialect). Every container's folded outcome, and the run's
outcome and Warning, must equal what Dask itself reports (future status and exception blame),
mapped by this test's own table — not by the plugin's code. The plugin's hooks are synchronous
(the scheduler calls them), so these tests need no event loop of their own.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

import cloudpickle  # type: ignore[import-untyped]  # noqa: E402  (a dependency of distributed)
from lifecycle_adapters.dask import LifecyclePlugin  # noqa: E402

import lifecycle  # noqa: E402

from . import _dask_tasks as tasks  # noqa: E402
from ._examples import run_example  # noqa: E402

pytestmark = pytest.mark.slow

cloudpickle.register_pickle_by_value(tasks)  # the workers cannot import the tests package

DIALECTS = ["datatailr", "domino", "qualytics"]


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None
    )
    with cluster, distributed.Client(cluster) as c:
        yield c


def _plugins(client: Any, tmp_path: Path) -> dict[str, LifecyclePlugin]:
    plugins = {
        d: LifecyclePlugin(f"sqlite:///{tmp_path / d}.db", dialect=d, name="graph")
        for d in DIALECTS
    }
    for plugin in plugins.values():
        client.register_plugin(plugin)
    return plugins


def _unregister(client: Any, plugins: dict[str, LifecyclePlugin]) -> None:
    for plugin in plugins.values():
        client.unregister_scheduler_plugin(plugin.name)
        plugin.close_writer()


def _wait_for(path: Path, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)
    return path.read_text()


def _dask_says(client: Any, futures: dict[str, Any]) -> dict[str, str]:
    """The outcome Dask reports for each key, in lifecycle's words: finished → succeeded;
    erred by its own code → failed; erred because an upstream key did (exception blame
    elsewhere) → cancelled; cancelled → cancelled."""

    def blame(dask_scheduler: Any, keys: list[str]) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for ts in dask_scheduler.tasks.values():
            if str(ts.key) in keys:
                b = ts.exception_blame
                out[str(ts.key)] = None if b is None else str(b.key)
        return out

    blamed = client.run_on_scheduler(blame, keys=list(futures))
    said = {}
    for key, future in futures.items():
        if future.status == "finished":
            said[key] = "succeeded"
        elif future.status == "error":
            said[key] = "failed" if blamed.get(key) == key else "cancelled"
        else:
            assert future.status == "cancelled", future.status
            said[key] = "cancelled"
    return said


def _policy(dialect: str, outcomes: list[str]) -> tuple[str, bool]:
    """The run's outcome and Warning the dialect's aggregation policy gives."""
    if lifecycle.dialect(dialect).aggregation == "warn":
        return "succeeded", any(o != "succeeded" for o in outcomes)
    if "failed" in outcomes:
        return "failed", False
    return ("cancelled" if "cancelled" in outcomes else "succeeded"), False


def test_a_graph_with_failures_retries_cancels_reuse_and_a_lost_worker(
    client: Any, tmp_path: Path
) -> None:
    delayed = dask.delayed
    plugins = _plugins(client, tmp_path)
    try:
        # an earlier graph: its keys stay in memory (we hold the futures)
        earlier = [delayed(tasks.inc, pure=True)(i) for i in range(5)]
        held = client.compute(earlier)
        assert client.gather(held) == [1, 2, 3, 4, 5]

        marker = tmp_path / "flaky-ran-once"
        pid_file, victim_marker = tmp_path / "victim.pid", tmp_path / "victim-ran"
        incs = [delayed(tasks.inc, pure=True)(i) for i in range(45)]  # 0..4: reused keys
        total = delayed(tasks.add, pure=True)(*incs)
        boom = delayed(tasks.boom, pure=True)(incs[7])
        dependents = [delayed(tasks.inc, pure=True)(boom, k) for k in range(3)]
        slow = delayed(tasks.slow, pure=True)(60)
        victim = delayed(tasks.victim, pure=True)(str(pid_file), str(victim_marker))
        with dask.annotate(retries=1):  # after the victim: the kill must not hit its retry
            flaky = delayed(tasks.flaky, pure=True)(str(marker), victim)
        outputs = [total, boom, *dependents, flaky, slow, victim, *incs]
        futures = client.compute(outputs)  # one batch: one run per plugin
        by_key = {str(f.key): f for f in futures}

        pid = int(_wait_for(pid_file))
        os.kill(pid, signal.SIGKILL)  # its worker process dies mid-task; Dask reschedules it
        assert by_key[str(victim.key)].result(timeout=60) == "survived"
        assert by_key[str(flaky.key)].result(timeout=60) == "second try"
        client.cancel(by_key[str(slow.key)])
        distributed.wait([f for f in futures if f.key != slow.key], timeout=60)
        said = _dask_says(client, by_key)
        assert said[str(boom.key)] == "failed"
        assert {said[str(d.key)] for d in dependents} == {"cancelled"}
        assert said[str(slow.key)] == "cancelled"
        assert len(said) >= 50

        for dialect, plugin in plugins.items():
            plugin.flush()
            with lifecycle.Runs(plugin.store) as runs:
                first, run_id = plugin.run_ids[0], plugin.run_ids[-1]
                view = runs.get(run_id)
                folded = {name: c.outcome for name, c in view.containers.items()}
                for key, outcome in said.items():
                    assert folded[key] == outcome, (dialect, key)
                outcome, warning = _policy(dialect, list(said.values()))
                assert (view.outcome, view.warning) == (outcome, warning), dialect
                reused = [str(d.key) for d in earlier]
                assert all(view.containers[k].cached_from == first for k in reused)
                history = runs.history(run_id)

                def requeued(key: str) -> list[str]:
                    return [
                        r.event.reason
                        for r in history  # noqa: B023  (used at once)
                        if isinstance(r.event, lifecycle.events.Requeued)
                        and r.stream.endswith("/" + key)
                    ]

                # a task on the killed worker is requeued too: count reasons, not attempts
                flaky_view, victim_view = (view.containers[str(t.key)] for t in (flaky, victim))
                assert requeued(str(flaky.key)).count("retry") == 1, dialect
                assert flaky_view.attempt == 1 + len(requeued(str(flaky.key)))
                assert requeued(str(victim.key)) == ["worker_lost"], dialect
                assert victim_view.attempt == 2
    finally:
        _unregister(client, plugins)


def test_errors_are_collected_and_raised_by_flush(client: Any, tmp_path: Path) -> None:
    """Dask swallows exceptions raised in plugin hooks: the plugin keeps lifecycle's errors
    and ``flush()`` raises them."""
    plugin = LifecyclePlugin("sqlite:///nonexistent-dir/x.db", dialect="datatailr")
    client.register_plugin(plugin)
    try:
        assert client.submit(tasks.inc, 41, pure=False).result() == 42
        with pytest.raises(ExceptionGroup) as caught:
            plugin.flush(timeout=30)
        assert caught.value.exceptions
        assert plugin.errors
        plugin.flush()  # raised once: nothing new since
    finally:
        client.unregister_scheduler_plugin(plugin.name)
        plugin.close_writer()


def test_an_unknown_dialect_is_an_error_not_a_silence(client: Any, tmp_path: Path) -> None:
    plugin = LifecyclePlugin(f"sqlite:///{tmp_path / 'x.db'}", dialect="no-such-dialect")
    client.register_plugin(plugin)
    try:
        client.submit(tasks.inc, 1, pure=False).result()
        with pytest.raises(ExceptionGroup, match="1 errors"):
            plugin.flush(timeout=30)
        assert isinstance(plugin.errors[0], lifecycle.UnknownDialect)
    finally:
        client.unregister_scheduler_plugin(plugin.name)
        plugin.close_writer()


def test_the_plugin_is_the_same_object_on_an_in_process_scheduler(client: Any) -> None:
    plugin = LifecyclePlugin("memory://")
    client.register_plugin(plugin)
    try:

        def same(dask_scheduler: Any, name: str) -> int:
            return id(dask_scheduler.plugins[name])

        assert client.run_on_scheduler(same, name=plugin.name) == id(plugin)
    finally:
        client.unregister_scheduler_plugin(plugin.name)
        plugin.close_writer()


def test_the_example_runs(tmp_path: Path) -> None:
    """examples/dask_plugin.py, as the README tells a user to run it."""
    out = run_example("dask_plugin.py", f"sqlite:///{tmp_path / 'runs.db'}", timeout=120)
    assert ": Failed (container 'broken-" in out
    assert out.count("Completed  attempt 1") == 8


def test_closing_finishes_the_runs_still_open(client: Any, tmp_path: Path) -> None:
    plugin = LifecyclePlugin(f"sqlite:///{tmp_path / 'runs.db'}", dialect="domino")
    client.register_plugin(plugin)
    future = client.submit(tasks.slow, 30, pure=False)
    try:
        deadline = time.monotonic() + 30
        while not plugin.run_ids:  # the scheduler has the graph, the writer its run
            assert time.monotonic() < deadline, "the graph never reached the plugin"
            time.sleep(0.05)
            plugin.flush()
        client.unregister_scheduler_plugin(plugin.name)
        plugin.close_writer()
        with lifecycle.Runs(plugin.store) as runs:
            view = runs.get(plugin.run_ids[-1])
            assert view.outcome == "cancelled"
            (container,) = view.containers.values()
            assert container.reason == "plugin_closed"
    finally:
        client.cancel(future)
