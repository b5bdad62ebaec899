"""The ``dask`` adapter (``lifecycle_adapters.dask_adapter.DaskAdapter``) against a real
``LocalCluster`` of 2 worker processes (1 thread each), started once for the module.

Conformance, a DAG with a failure and its dependents, aborts of a running command and callable
(nothing left running), a timeout, an out-of-memory child, a worker SIGKILLed from outside
mid-container, an engine SIGKILLed mid-container, the seed's Complex Pipeline giving the same
results as ``inprocess``, and ``examples/dask_cluster.py``. asyncio only: distributed's
asynchronous Client does not run under trio (the async tests' trio variants are skipped, and
the adapter's refusal under trio is tested).
"""

from __future__ import annotations

import importlib
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

import cloudpickle  # type: ignore[import-untyped]  # noqa: E402  (a dependency of distributed)
from lifecycle_adapters.dask_adapter import SCHEDULER_ENV, DaskAdapter  # noqa: E402

import lifecycle  # noqa: E402
from lifecycle import Container, Engine, MemoryStore, Upstream  # noqa: E402
from lifecycle import events as ev  # noqa: E402
from lifecycle.testing._adapters import check_adapter  # noqa: E402

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers need not import tests

EXAMPLES = Path(__file__).parent.parent.parent / "examples"
STARTED = re.compile(r"running on Dask worker (\S+), pid (\d+)")


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[str, Any]]:
    """The scheduler's address and a (blocking) client of the module's cluster."""
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        local = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
    with local, distributed.Client(local) as client:
        yield local.scheduler_address, client


@pytest.fixture
def address(cluster: tuple[str, Any], anyio_backend: str) -> str:
    """The scheduler's address, for the async tests: on asyncio; their trio variants are
    skipped, saying why (the refusal under trio is tested on its own below)."""
    if anyio_backend != "asyncio":
        pytest.skip("the dask adapter runs on asyncio only: distributed's async Client does not")
    return cluster[0]


@pytest.fixture
async def runs() -> Any:
    async with lifecycle.AsyncRuns("memory://", poll_interval=0.05) as service:
        yield service


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped yet does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


async def history(runs: lifecycle.AsyncRuns, run_id: int, container: str) -> list[ev.Fact]:
    name = f"run-{run_id}/{container}"
    return [r.event for r in await runs.history(run_id) if r.stream == name]


def texts(facts: list[ev.Fact], stream: str | None = None) -> list[str]:
    return [
        f.text
        for f in facts
        if isinstance(f, ev.LogRecorded) and (stream is None or f.stream == stream)
    ]


async def wait_for_line(runs: lifecycle.AsyncRuns, run_id: int, text: str, count: int = 1) -> None:
    """Until ``count`` containers of the run have logged ``text`` (live, while they run)."""
    seen: set[str] = set()
    with anyio.fail_after(30):
        async for record in runs.follow(run_id):
            if isinstance(record.event, ev.LogRecorded) and record.event.text == text:
                seen.add(record.stream)
                if len(seen) == count:
                    return
    raise AssertionError(f"the run ended before {count} containers logged {text!r}")


def started_on(facts: list[ev.Fact]) -> tuple[str, int]:
    """The worker and the child's pid a container's ``system`` log line names."""
    for text in texts(facts, "system"):
        found = STARTED.fullmatch(text)
        if found:
            return found[1], int(found[2])
    raise AssertionError(f"no 'running on Dask worker' line in {texts(facts)}")


def py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def double(x: int) -> int:
    print(f"doubling {x}")
    return 2 * x


def explode(x: int) -> int:
    raise ZeroDivisionError(f"cannot divide {x}")


def sleepy() -> None:
    print("up", flush=True)
    time.sleep(3600)


async def test_conforms(address: str) -> None:
    await check_adapter(lambda: DaskAdapter(address, grace=2.0), grace=5.0)


LINES = (
    "import sys\n"
    "out = sys.stdout.buffer\n"
    "out.write(b'a' * 2500 + b'\\n')\n"  # longer than max_line: split
    "out.write(b'bad \\xff\\xfe utf-8\\r\\n')\n"  # replaced; the CR dropped
    "out.write('\u00e9' .encode() * 700 + b'\\n')\n"  # split at character boundaries
    "out.write(b'no newline at the end')\n"
    "sys.stderr.write('\x1b[31mred\x1b[0m\\n')\n"
)


async def test_lines_are_the_subprocess_adapters(address: str) -> None:
    """The same command's output, through this adapter and the ``subprocess`` adapter: the
    same lines on the same streams (caps, splitting, decoding are ``_lines``' in both)."""
    from lifecycle_adapters.local_process import SubprocessAdapter

    from lifecycle._engine import ContainerSpec

    spec = ContainerSpec(run_id=1, name="lines", command=tuple(py(LINES)))
    got = {}
    for adapter in (DaskAdapter(address, max_line=1000), SubprocessAdapter(max_line=1000)):
        facts: list[ev.Fact] = []

        async def report(fact: ev.Fact, facts: list[ev.Fact] = facts) -> None:
            facts.append(fact)

        async with adapter:
            finished = await adapter.execute(spec, report)
        assert isinstance(finished.fact, ev.ExecutionSucceeded)
        got[adapter.name] = (texts(facts, "stdout"), texts(facts, "stderr"))
    assert got["dask"] == got["subprocess"]
    stdout = got["dask"][0]
    assert [len(line) for line in stdout[:3]] == [1000, 1000, 500]
    assert "bad \ufffd\ufffd utf-8" in stdout


async def test_dag_with_a_failure_and_its_dependents(
    cluster: tuple[str, Any], address: str, runs: lifecycle.AsyncRuns
) -> None:
    async with DaskAdapter(address) as adapter, Engine(runs, adapter=adapter) as engine:
        run = await engine.submit(
            "datatailr",
            containers=[
                Container("a", call=double, args=(21,)),
                Container("b", call=double, args=(Upstream("a"),)),
                Container("bad", call=explode, args=(Upstream("a"),)),
                Container("after_bad", call=double, args=(Upstream("bad"),)),
                Container("last", command=py("print('last')"), depends_on=["after_bad", "b"]),
                Container("shell", command=py("import sys; sys.exit(4)"), depends_on=["a"]),
                Container(
                    "says_oom", command=py("import sys; print('out of memory', file=sys.stderr)")
                ),
                Container("big", call=len, args=(b"x" * 3_000_000,)),  # sent by scatter
            ],
        )
        view = await engine.wait(run.id)
    assert view.state == "Failed"
    states = {name: (c.state, c.reason) for name, c in view.containers.items()}
    assert states == {
        "a": ("Completed", None),
        "b": ("Completed", None),
        "bad": ("Failed", "ZeroDivisionError: cannot divide 42"),
        "after_bad": ("Stopped", "upstream_failed"),
        "last": ("Stopped", "upstream_failed"),
        "shell": ("Failed", "exited with code 4"),
        "says_oom": ("Completed", None),  # exit code 0: its words are no evidence
        "big": ("Completed", None),
    }
    assert await lifecycle.load_result(runs, run.id, "a") == 42
    assert await lifecycle.load_result(runs, run.id, "b") == 84
    assert await lifecycle.load_result(runs, run.id, "big") == 3_000_000
    b = await history(runs, run.id, "b")
    assert texts(b, "stdout") == ["doubling 42"]
    worker, _ = started_on(b)
    assert worker in cluster[1].scheduler_info()["workers"]
    assert any("ZeroDivisionError" in t for t in texts(await history(runs, run.id, "bad")))


async def test_abort_stops_a_running_command_and_callable(
    address: str, runs: lifecycle.AsyncRuns, tmp_path: Path
) -> None:
    """Both workers' single threads busy, a third container waits in Dask's queue: the abort
    stops the two children and the third never starts."""
    marker = tmp_path / "queued-ran"
    async with (
        DaskAdapter(address, grace=1.0) as adapter,
        Engine(runs, adapter=adapter) as engine,
    ):
        run = await engine.submit(
            "domino",
            containers=[
                Container(
                    "cmd", command=py("import time; print('up', flush=True); time.sleep(3600)")
                ),
                Container("call", call=sleepy),
                Container("queued", command=py(f"open({str(marker)!r}, 'w').write('ran')")),
            ],
        )
        await wait_for_line(runs, run.id, "up", count=2)  # both children run and print
        view = await engine.abort(run.id)
        view = await engine.wait(run.id)
    assert view.state == "Stopped"
    queued = await history(runs, run.id, "queued")
    assert not any(isinstance(f, ev.ExecutionStarted) for f in queued), queued
    assert view.containers["queued"].state == "Stopped"
    for name in ("cmd", "call"):
        facts = await history(runs, run.id, name)
        assert [type(f).__name__ for f in facts if not isinstance(f, ev.LogRecorded)][-3:] == [
            "StopRequested",
            "StoppingStarted",
            "Stopped",
        ]
        _, pid = started_on(facts)
        assert gone(pid), f"{name}: its child {pid} still runs"
    assert not marker.exists(), "the queued container ran"


async def test_timeout(address: str, runs: lifecycle.AsyncRuns) -> None:
    async with (
        DaskAdapter(address, grace=1.0) as adapter,
        Engine(runs, adapter=adapter) as engine,
    ):
        slow = py("import time; print('up', flush=True); time.sleep(3600)")
        run = await engine.submit(
            "datatailr", containers=[Container("slow", command=slow, timeout=1)]
        )
        view = await engine.wait(run.id)
    assert (view.containers["slow"].state, view.containers["slow"].reason) == ("Failed", "timeout")
    facts = await history(runs, run.id, "slow")
    assert isinstance(facts[-1], ev.InfrastructureFailed)
    assert facts[-1].reason == "timeout"
    assert gone(started_on(facts)[1])


async def test_memory_limit_is_out_of_memory(address: str, runs: lifecycle.AsyncRuns) -> None:
    limit = 256 * 2**20
    hog = py("print('allocating', flush=True); x = bytearray(2 * 2**30)")
    async with DaskAdapter(address) as adapter, Engine(runs, adapter=adapter) as engine:
        run = await engine.submit(
            "datatailr",
            containers=[
                Container("hog", command=hog, memory_limit=limit),
                Container("call_hog", call=bytearray, args=(2 * 2**30,), memory_limit=limit),
            ],
        )
        view = await engine.wait(run.id)
    assert view.state == "Out of Memory"
    for name in ("hog", "call_hog"):
        assert view.containers[name].state == "Out of Memory"
        ending = (await history(runs, run.id, name))[-1]
        assert ending == ev.OutOfMemory(limit_bytes=limit)


async def test_a_worker_killed_mid_container_is_worker_lost(
    cluster: tuple[str, Any], address: str, runs: lifecycle.AsyncRuns
) -> None:
    """A command and a call, one on each worker (1 thread each); both workers SIGKILLed."""
    client = cluster[1]
    async with DaskAdapter(address) as adapter, Engine(runs, adapter=adapter) as engine:
        sleeper = py("import time; print('up', flush=True); time.sleep(3600)")
        run = await engine.submit(
            "domino",
            containers=[Container("cmd", command=sleeper), Container("call", call=sleepy)],
        )
        await wait_for_line(runs, run.id, "up", count=2)
        where = {name: started_on(await history(runs, run.id, name)) for name in ("cmd", "call")}
        assert where["cmd"][0] != where["call"][0], where
        pids = await anyio.to_thread.run_sync(lambda: client.run(os.getpid))
        for worker, _ in where.values():
            os.kill(pids[worker], signal.SIGKILL)
        view = await engine.wait(run.id)
    assert view.state == "Error"
    for name, (worker, child) in where.items():
        facts = await history(runs, run.id, name)
        assert view.containers[name].state == "Error"
        assert facts[-1] == ev.InfrastructureFailed(reason="worker_lost")
        assert any(worker in t for t in texts(facts, "system") if t.startswith("worker lost"))
        assert gone(child), f"{name}: the container outlived its worker"
    await anyio.to_thread.run_sync(lambda: client.wait_for_workers(2, timeout=60))


async def test_a_retry_by_dask_never_runs_a_container_twice(
    address: str, runs: lifecycle.AsyncRuns
) -> None:
    """On a cluster that retries tasks whose worker died (``allowed-failures`` 3, Dask's
    default: any cluster the adapter did not start), the retry finds the container claimed and
    starts nothing: ``worker_lost``, one start only."""
    with dask.config.set({"distributed.scheduler.allowed-failures": 3}):
        retrying = await distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            asynchronous=True,
            dashboard_address=":0",
        )
    try:
        async with (
            DaskAdapter(retrying.scheduler_address) as adapter,
            Engine(runs, adapter=adapter) as engine,
        ):
            sleeper = py("import time; print('up', flush=True); time.sleep(3600)")
            run = await engine.submit("domino", containers=[Container("once", command=sleeper)])
            await wait_for_line(runs, run.id, "up")
            worker, child = started_on(await history(runs, run.id, "once"))
            assert adapter.client is not None
            pids = await adapter.client.run(os.getpid)
            os.kill(pids[worker], signal.SIGKILL)
            view = await engine.wait(run.id)
    finally:
        await retrying.close()
    facts = await history(runs, run.id, "once")
    assert view.containers["once"].state == "Error"
    assert facts[-1] == ev.InfrastructureFailed(reason="worker_lost")
    starts = [t for t in texts(facts, "system") if STARTED.fullmatch(t)]
    assert len(starts) == 1, starts
    assert any("Dask retried it on" in t and worker in t for t in texts(facts, "system"))
    assert gone(child)


def _load_example(name: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    module = importlib.import_module(name)
    return module


def test_complex_pipeline_same_results_as_inprocess(
    cluster: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seed's example through ``adapter="dask"`` (the entry point, the scheduler from
    ``LIFECYCLE_DASK_SCHEDULER``), and through ``inprocess``: the same states and results."""
    monkeypatch.setenv(SCHEDULER_ENV, cluster[0])
    example = _load_example("complex_pipeline", monkeypatch)
    names = ["my_number", "first_addition", "reduce_list", "add_one", "add_two", "add_three"]
    outcomes = {}
    for adapter in ("dask", "inprocess"):
        store = MemoryStore()
        view = example.complex_pipeline(
            local_run=True, store=store, adapter=adapter, progress=False
        )
        wf = lifecycle.Workflow(name="Complex Pipeline", store=store)
        results = {n: wf.result(view.run_id, task_name=n) for n in names}
        states = {n: c.state for n, c in view.containers.items()}
        outcomes[adapter] = (view.state, states, results)
    assert outcomes["dask"] == outcomes["inprocess"]
    assert outcomes["dask"][2]["add_three"] == 5 * 42 + 3


def test_under_trio_it_refuses_with_a_clear_error(cluster: tuple[str, Any]) -> None:
    import trio

    from lifecycle._engine import ContainerSpec

    async def main() -> None:
        async def report(fact: ev.Fact) -> None:
            pass

        adapter = DaskAdapter(cluster[0])
        await adapter.execute(ContainerSpec(run_id=1, name="c", command=("true",)), report)

    with pytest.raises(RuntimeError, match="asyncio only"):
        trio.run(main)


def test_the_example_runs_and_the_cli_names_the_worker(tmp_path: Path) -> None:
    """examples/dask_cluster.py (its own LocalCluster), as the README tells a user to run it;
    then ``lifecycle log read`` shows, in the container's log, the worker that ran it."""
    import subprocess

    from ._examples import run_example

    store = f"sqlite:///{tmp_path / 'runs.db'}"
    out = run_example("dask_cluster.py", store, timeout=120)
    assert "dask-squares: Completed" in out
    assert "total = 14" in out
    read = subprocess.run(
        [sys.executable, "-m", "lifecycle._cli", "log", "read", "dask-squares", "--task", "hello"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "LIFECYCLE_STORE": store, "COLUMNS": "200"},
    )
    assert re.search(r"running on Dask worker tcp://\S+, pid \d+", read.stdout), read.stdout
    assert "hello from" in read.stdout


ENGINE_THAT_DIES = """
import asyncio, os, re, sys
from lifecycle_adapters.dask_adapter import DaskAdapter
from lifecycle._engine import ContainerSpec

async def main(address):
    async def report(fact):
        text = getattr(fact, "text", "")
        found = re.match(r"running on Dask worker \\S+, pid (\\d+)", text)
        if found:
            print(found[1], flush=True)
        if text == "up":
            os.kill(os.getpid(), 9)

    code = "import time; print('up', flush=True); time.sleep(3600)"
    spec = ContainerSpec(run_id=1, name="c", command=(sys.executable, "-c", code))
    await DaskAdapter(address).execute(spec, report)

asyncio.run(main(sys.argv[1]))
"""


def test_a_container_stops_when_its_engine_dies(cluster: tuple[str, Any]) -> None:
    """The engine SIGKILLs itself mid-container: the scheduler releases its task, and the
    task's watcher stops the child on the worker."""
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", ENGINE_THAT_DIES, cluster[0]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    child = int(done.stdout.split()[0])
    assert gone(child), "the container outlived its engine"
