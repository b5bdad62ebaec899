"""The engine on memory://, on asyncio and trio: the canonical sequence, dependencies,
parallelism, each dialect's aggregation policy, timeouts, refusals."""

from __future__ import annotations

import sys

import anyio
import anyio.lowlevel
import pytest

import lifecycle
from lifecycle import events as ev
from lifecycle._engine import Container, ContainerSpec, Engine, Finished, Report
from lifecycle.testing import MockAdapter

from .conftest import facts, logs

pytestmark = pytest.mark.anyio

START = ["Requested", "ResourcesRequested", "ResourcesAssigned", "PreparationStarted"]


def ok(value: object = None) -> object:
    return value


def fail() -> None:
    raise RuntimeError("it broke")


async def test_contract_example_with_subprocess(runs: lifecycle.AsyncRuns) -> None:
    engine = Engine(runs, adapter="subprocess", max_parallel=4)
    run = await engine.submit(
        "qualytics",
        operation="profile",
        name="nightly",
        containers=[
            Container("orders", command=[sys.executable, "-c", "print('ok')"]),
            Container(
                "customers",
                command=["false"],
                depends_on=["orders"],
                timeout=60,
                memory_limit=512 * 2**20,
            ),
        ],
    )
    view = await engine.wait(run.id)
    assert (view.state, view.warning) == ("Success", True)
    assert view.containers["orders"].state == "Success"
    assert view.containers["customers"].state == "Failure"
    assert await logs(runs, run.id, "orders") == ["ok"]
    with pytest.raises(lifecycle.StreamClosed):
        await engine.abort(run.id)


@pytest.mark.parametrize("dialect", ["datatailr", "domino", "qualytics"])
async def test_canonical_sequence(runs: lifecycle.AsyncRuns, dialect: str) -> None:
    operation = "scan" if dialect == "qualytics" else None
    async with Engine(runs, adapter="inprocess") as engine:
        run = await engine.submit(
            dialect, operation=operation, containers=[Container("a", call=ok, args=(7,))]
        )
        view = await engine.wait(run.id)
    assert view.outcome == "succeeded"
    assert not view.warning
    run_facts = await facts(runs, run.id)
    assert run_facts == [*START, "ExecutionStarted", "ExecutionSucceeded"]
    assert await facts(runs, run.id, "a") == [
        *START,
        "ExecutionStarted",
        "ResultStored",
        "ExecutionSucceeded",
    ]


async def test_dependencies_run_in_order_and_get_upstream_results(
    runs: lifecycle.AsyncRuns,
) -> None:
    order: list[str] = []

    def step(name: str, *inputs: int) -> int:
        order.append(name)
        return sum(inputs) + 1

    containers = [
        Container("d", call=step, args=("d", lifecycle_up("b"), lifecycle_up("c"))),
        Container("b", call=step, args=("b", lifecycle_up("a"))),
        Container("c", call=step, args=("c", lifecycle_up("a"))),
        Container("a", call=step, args=("a",)),
        Container("e", call=step, args=("e",), depends_on=["d"]),
    ]
    async with Engine(runs, adapter="inprocess") as engine:
        run = await engine.submit("datatailr", containers=containers)
        view = await engine.wait(run.id)
    assert view.state == "Completed"
    assert order[0] == "a"
    assert set(order[1:3]) == {"b", "c"}
    assert order[3:] == ["d", "e"]
    assert await lifecycle_load(runs, run.id, "d") == 5  # a=1, b=c=2, d=2+2+1


def lifecycle_up(name: str, run_id: int | None = None) -> object:
    from lifecycle._engine import Upstream

    return Upstream(name, run_id)


async def lifecycle_load(runs: lifecycle.AsyncRuns, run_id: int, name: str | None) -> object:
    from lifecycle._engine import load_result

    return await load_result(runs, run_id, name)


async def test_max_parallel_is_respected(runs: lifecycle.AsyncRuns) -> None:
    running = 0
    most = 0

    async def handler(spec: ContainerSpec, report: Report) -> Finished:
        nonlocal running, most
        await report(ev.ExecutionStarted())
        running += 1
        most = max(most, running)
        for _ in range(20):
            await anyio.lowlevel.checkpoint()
        running -= 1
        return Finished(ev.ExecutionSucceeded())

    adapter = MockAdapter(handler)
    async with Engine(runs, adapter=adapter, max_parallel=3) as engine:
        run = await engine.submit(
            "domino", containers=[Container(f"c{i}", command=["x"]) for i in range(10)]
        )
        view = await engine.wait(run.id)
    assert view.state == "Succeeded"
    assert most == 3
    assert len(adapter.calls) == 10
    assert all(c.state == "Succeeded" for c in view.containers.values())
    for name in view.containers:  # waiting for a slot changes nothing in the sequence
        assert await facts(runs, run.id, name) == [*START, "ExecutionStarted", "ExecutionSucceeded"]


async def test_qualytics_profile_failed_container_warns(runs: lifecycle.AsyncRuns) -> None:
    async with Engine(runs, adapter="inprocess") as engine:
        run = await engine.submit(
            "qualytics",
            operation="profile",
            containers=[Container("good", call=ok), Container("bad", call=fail)],
        )
        view = await engine.wait(run.id)
    assert (view.state, view.outcome, view.warning) == ("Success", "succeeded", True)
    assert view.containers["bad"].state == "Failure"
    assert view.containers["bad"].reason == "RuntimeError: it broke"
    assert any("it broke" in line for line in await logs(runs, run.id, "bad"))


async def test_datatailr_failure_fails_run_and_stops_downstream(
    runs: lifecycle.AsyncRuns,
) -> None:
    async with Engine(runs, adapter="inprocess") as engine:
        run = await engine.submit(
            "datatailr",
            containers=[
                Container("first", call=fail),
                Container("second", call=ok, depends_on=["first"]),
                Container("third", call=ok, depends_on=["second"]),
                Container("independent", call=ok, args=(1,)),
            ],
        )
        view = await engine.wait(run.id)
    assert view.state == "Failed"
    assert view.reason == "container 'first' failed: RuntimeError: it broke"
    states = {name: (c.state, c.reason) for name, c in view.containers.items()}
    assert states == {
        "first": ("Failed", "RuntimeError: it broke"),
        "second": ("Stopped", "upstream_failed"),
        "third": ("Stopped", "upstream_failed"),
        "independent": ("Completed", None),
    }


@pytest.mark.parametrize(
    ("dialect", "ending", "state"),
    [
        ("datatailr", ev.OutOfMemory(limit_bytes=100), "Out of Memory"),
        ("domino", ev.OutOfMemory(limit_bytes=100), "Failed"),
        ("domino", ev.InfrastructureFailed(reason="worker_lost"), "Error"),
        ("datatailr", ev.InfrastructureFailed(reason="worker_lost"), "Failed"),
    ],
)
async def test_run_failure_carries_first_failing_kind(
    runs: lifecycle.AsyncRuns, dialect: str, ending: ev.Fact, state: str
) -> None:
    async def handler(spec: ContainerSpec, report: Report) -> Finished:
        await report(ev.ExecutionStarted())
        if spec.name == "bad":
            return Finished(ending)  # type: ignore[arg-type]
        return Finished(ev.ExecutionSucceeded())

    async with Engine(runs, adapter=MockAdapter(handler)) as engine:
        run = await engine.submit(
            dialect, containers=[Container("bad", command=["x"]), Container("ok", command=["y"])]
        )
        view = await engine.wait(run.id)
    assert view.state == state
    assert (await facts(runs, run.id))[-1] == type(ending).__name__


async def test_container_timeout(runs: lifecycle.AsyncRuns) -> None:
    cancelled = anyio.Event()

    async def forever() -> None:
        try:
            await anyio.sleep(3600)
        finally:
            cancelled.set()

    async with Engine(runs, adapter="inprocess") as engine:
        run = await engine.submit(
            "datatailr", containers=[Container("slow", call=forever, timeout=0.2)]
        )
        view = await engine.wait(run.id)
    assert cancelled.is_set()
    assert (view.state, view.reason) == ("Failed", "timeout")
    assert view.containers["slow"].reason == "timeout"
    assert (await facts(runs, run.id, "slow"))[-1] == "InfrastructureFailed"


async def test_start_timeout(runs: lifecycle.AsyncRuns) -> None:
    async def never_starts(spec: ContainerSpec, report: Report) -> Finished:
        await anyio.sleep(3600)
        raise AssertionError("unreachable")

    engine = Engine(runs, adapter=MockAdapter(never_starts), start_timeout=0.1)
    async with engine:
        run = await engine.submit("domino", containers=[Container("stuck", command=["x"])])
        view = await engine.wait(run.id)
    assert (view.state, view.reason) == ("Error", "start_timeout")
    assert "ExecutionStarted" not in await facts(runs, run.id, "stuck")


class Point:
    def __init__(self, x: int) -> None:
        self.x = x


async def test_results_codecs(runs: lifecycle.AsyncRuns) -> None:
    values = {
        "plain": {"a": [1, 2.5, None, True, "s", b"b"], 1: "int key"},
        "tuple": (1, 2),
        "custom": Point(3),
        "big": 2**70,
        "none": None,
    }
    async with Engine(runs, adapter="inprocess") as engine:
        run = await engine.submit(
            "domino", containers=[Container(k, call=ok, args=(v,)) for k, v in values.items()]
        )
        view = await engine.wait(run.id)
    codecs = {k: (c.result.codec if c.result else None) for k, c in view.containers.items()}
    assert codecs == {
        "plain": "msgpack",
        "tuple": "pickle",
        "custom": "pickle",
        "big": "pickle",
        "none": None,
    }
    assert await lifecycle_load(runs, run.id, "plain") == values["plain"]
    assert await lifecycle_load(runs, run.id, "tuple") == (1, 2)
    custom = await lifecycle_load(runs, run.id, "custom")
    assert isinstance(custom, Point)
    assert custom.x == 3
    assert await lifecycle_load(runs, run.id, "none") is None
    with pytest.raises(lifecycle.UnknownRun):
        await lifecycle_load(runs, run.id, "nope")


async def test_unstorable_result_fails_the_container(runs: lifecycle.AsyncRuns) -> None:
    async with Engine(runs, adapter="inprocess") as engine:
        run = await engine.submit(
            "datatailr", containers=[Container("lam", call=lambda: lambda: 1)]
        )
        view = await engine.wait(run.id)
    assert view.containers["lam"].state == "Failed"
    assert "could not be stored" in (view.containers["lam"].reason or "")


async def test_cached_containers_are_not_executed(runs: lifecycle.AsyncRuns) -> None:
    adapter = MockAdapter()
    async with Engine(runs, adapter=adapter) as engine:
        first = await engine.submit(
            "datatailr", containers=[Container("a", call=ok, args=({"n": 41},))]
        )
        await engine.wait(first.id)

        def plus_one(value: dict[str, int]) -> int:
            return value["n"] + 1

        second = await engine.submit(
            "datatailr",
            mode="resume",
            original_run_id=first.id,
            containers=[
                Container("a", call=ok, cached_from=first.id),
                Container("b", call=plus_one, args=(lifecycle_up("a"),)),
            ],
        )
        view = await engine.wait(second.id)
        third = await engine.submit("datatailr", containers=[Container("a", cached_from=second.id)])
        again = await engine.wait(third.id)
    assert [spec.name for spec in adapter.calls] == ["a", "b"]  # a ran once, in the first run
    assert view.state == "Completed"
    assert view.containers["a"].cached_from == first.id
    assert view.containers["a"].result == (await runs.get(first.id)).containers["a"].result
    assert await facts(runs, second.id, "a") == [
        *START,
        "ExecutionStarted",
        "ResultStored",
        "ExecutionSucceeded",
    ]
    assert await lifecycle_load(runs, second.id, "b") == 42
    assert again.containers["a"].cached_from == first.id  # the run that computed it
    assert await lifecycle_load(runs, third.id, "a") == {"n": 41}


async def test_upstream_of_another_run(runs: lifecycle.AsyncRuns) -> None:
    async with Engine(runs, adapter="inprocess") as engine:
        first = await engine.submit("domino", containers=[Container("a", call=ok, args=(20,))])
        await engine.wait(first.id)
        second = await engine.submit(
            "domino",
            containers=[Container("b", call=lambda x: x * 2, args=(lifecycle_up("a", first.id),))],
        )
        await engine.wait(second.id)
    assert await lifecycle_load(runs, second.id, "b") == 40


@pytest.mark.parametrize(
    ("containers", "match"),
    [
        (
            [Container("a", call=ok, depends_on=["b"]), Container("b", call=ok, depends_on=["a"])],
            "dependency cycle: a -> b -> a",
        ),
        ([Container("a", call=ok, depends_on=["ghost"])], "'ghost', which is not submitted"),
        ([Container("a", call=ok), Container("a", call=ok)], "two containers are named 'a'"),
        ([Container("a", call=ok, depends_on=["a"])], "depends on itself"),
        ([Container("a", command=["true"])], "adapter 'inprocess' cannot run"),
        ([], "at least one container"),
    ],
)
async def test_bad_submissions_write_nothing(
    runs: lifecycle.AsyncRuns, containers: list[Container], match: str
) -> None:
    engine = Engine(runs, adapter="inprocess")
    with pytest.raises(ValueError, match=match):
        await engine.submit("datatailr", containers=containers)
    assert await runs.store.read_all() == []
    assert await runs.list() == []


async def test_cached_from_a_failed_container_is_refused(runs: lifecycle.AsyncRuns) -> None:
    engine = Engine(runs, adapter="inprocess")
    run = await engine.submit("datatailr", containers=[Container("a", call=fail)])
    await engine.wait(run.id)
    before = await runs.store.read_all()
    with pytest.raises(ValueError, match="did not succeed"):
        await engine.submit("datatailr", containers=[Container("a", cached_from=run.id)])
    assert await runs.store.read_all() == before


def test_unknown_adapter_lists_the_installed_ones() -> None:
    runs = lifecycle.AsyncRuns("memory://")
    with pytest.raises(lifecycle.LifecycleError, match="installed: dask, inprocess, subprocess"):
        Engine(runs, adapter="nope")


async def test_runs_without_container_streams_take_one_container(
    runs: lifecycle.AsyncRuns,
) -> None:
    engine = Engine(runs, adapter="inprocess")
    with pytest.raises(ValueError, match="submit exactly one container"):
        await engine.submit(
            "qualytics",
            operation="sync",
            containers=[Container("a", call=ok), Container("b", call=ok)],
        )

    def work() -> str:
        print("syncing")
        return "synced"

    run = await engine.submit("qualytics", operation="sync", containers=[Container("s", call=work)])
    view = await engine.wait(run.id)
    assert (view.state, view.containers) == ("Success", {})
    assert await facts(runs, run.id) == [
        *START,
        "ExecutionStarted",
        "ResultStored",
        "ExecutionSucceeded",
    ]
    assert await logs(runs, run.id) == ["syncing"]
    assert await lifecycle_load(runs, run.id, "s") == "synced"
    promote = await engine.submit(
        "qualytics", operation="promote", containers=[Container("p", call=fail)]
    )
    assert (await engine.wait(promote.id)).state == "Failure"


async def test_missing_command_fails_container_and_engine_goes_on(
    runs: lifecycle.AsyncRuns,
) -> None:
    async with Engine(runs, adapter="subprocess") as engine:
        run = await engine.submit(
            "qualytics",
            operation="scan",
            containers=[
                Container("missing", command=["lifecycle-no-such-command"]),
                Container("fine", command=[sys.executable, "-c", "print('still here')"]),
            ],
        )
        view = await engine.wait(run.id)
    assert view.state == "Success"
    missing = view.containers["missing"]
    assert missing.state == "Failure"
    assert "No such file or directory" in (missing.reason or "")
    assert any("lifecycle-no-such-command" in line for line in await logs(runs, run.id, "missing"))
    assert view.containers["fine"].state == "Success"


async def test_without_async_with_wait_drives_the_run(runs: lifecycle.AsyncRuns) -> None:
    engine = Engine(runs, adapter="inprocess")
    run = await engine.submit("domino", containers=[Container("a", call=ok, args=(1,))])
    assert (await runs.get(run.id)).state == "Queued"
    assert [lease.run_id for lease in await runs.store.leases()] == [run.id]
    view = await engine.wait(run.id)
    assert view.state == "Succeeded"
    assert await runs.store.leases() == []
    assert (await engine.wait(run.id)).state == "Succeeded"


async def test_execute_in_a_task_group(runs: lifecycle.AsyncRuns) -> None:
    gate = anyio.Event()

    async def held() -> int:
        await gate.wait()
        return 5

    engine = Engine(runs, adapter="inprocess")
    async with anyio.create_task_group() as tg:
        run = await tg.start(
            lambda task_status: engine.execute(
                "domino", containers=[Container("a", call=held)], task_status=task_status
            )
        )
        assert run.state == "Queued"
        gate.set()
    assert (await runs.get(run.id)).state == "Succeeded"


async def test_leaving_the_engine_with_an_error_ends_its_runs(runs: lifecycle.AsyncRuns) -> None:
    started = anyio.Event()

    async def forever() -> None:
        started.set()
        await anyio.sleep(3600)

    async def leave_with_an_error() -> int:
        async with Engine(runs, adapter="inprocess") as engine:
            run = await engine.submit("domino", containers=[Container("a", call=forever)])
            await started.wait()
            raise KeyError(run.id)

    with pytest.raises(KeyError) as raised:
        await leave_with_an_error()
    run_id = raised.value.args[0]
    view = await runs.get(run_id)
    assert (view.state, view.reason) == ("Error", "engine_stopped")
    assert view.containers["a"].reason == "engine_stopped"
    assert await runs.store.leases() == []


async def test_dialect_without_the_canonical_phases_is_refused(
    runs: lifecycle.AsyncRuns,
) -> None:
    mine = lifecycle.Dialect(
        name="engine-test-mine",
        states=[
            lifecycle.State("Waiting"),
            lifecycle.State("Working"),
            lifecycle.State("Done", outcome="succeeded"),
            lifecycle.State("Broken", outcome="failed"),
        ],
        initial="Waiting",
        transitions=[
            {"trigger": "ExecutionStarted", "source": "Waiting", "dest": "Working"},
            {"trigger": "ExecutionSucceeded", "source": "Working", "dest": "Done"},
            {"trigger": "InfrastructureFailed", "source": ["Waiting", "Working"], "dest": "Broken"},
        ],
    )
    engine = Engine(runs, adapter="inprocess")
    with pytest.raises(ValueError, match="canonical sequence"):
        await engine.submit(mine, containers=[Container("a", call=ok)])
    assert await runs.store.read_all() == []
    tolerant = lifecycle.Dialect(
        name="engine-test-tolerant",
        states=list(mine.states.values()),
        initial="Waiting",
        transitions=[
            {"trigger": "ExecutionStarted", "source": "Waiting", "dest": "Working"},
            {"trigger": "ExecutionSucceeded", "source": "Working", "dest": "Done"},
            {"trigger": "InfrastructureFailed", "source": ["Waiting", "Working"], "dest": "Broken"},
        ],
        tolerate={
            "ResourcesRequested": "Waiting",
            "ResourcesAssigned": "Waiting",
            "PreparationStarted": "Waiting",
            "LogRecorded": ["Waiting", "Working"],
            "ResultStored": "Working",
        },
    )
    run = await engine.submit(tolerant, containers=[Container("a", call=ok, args=(3,))])
    view = await engine.wait(run.id)
    assert (view.state, view.containers) == ("Done", {})
    assert await lifecycle_load(runs, run.id, "a") == 3


async def test_start_drives_a_run_recorded_earlier_once(runs: lifecycle.AsyncRuns) -> None:
    """``Engine.start``: a run created (and armed) by someone else is driven by one engine only;
    its containers must match; a run that has started is not started again."""
    armed = await runs.create(
        "datatailr",
        name="later",
        containers=["a", "b"],
        then=[ev.ScheduleArmed(due_at=None)],
    )
    assert armed.state == "Scheduled"
    work = [Container("a", call=ok, args=(1,)), Container("b", call=ok, depends_on=("a",))]
    async with Engine(runs, adapter="inprocess") as one, Engine(runs, adapter="inprocess") as two:
        with pytest.raises(ValueError, match="has containers"):
            await one.start(armed.run_id, containers=work[:1])
        assert await one.start(armed.run_id, containers=work) is not None
        assert one.has(armed.run_id)
        assert await one.start(armed.run_id, containers=work) is None  # this engine has it
        assert await two.start(armed.run_id, containers=work) is None  # its lease is taken
        done = await one.wait(armed.run_id)
    assert done.state == "Completed"
    assert (await facts(runs, armed.run_id))[:3] == [
        "Requested",
        "ScheduleArmed",
        "ResourcesRequested",
    ]
    async with Engine(runs, adapter="inprocess") as three:
        assert await three.start(armed.run_id, containers=work) is None  # it ran already


async def test_create_along_is_one_append_that_checks_the_other_run(
    runs: lifecycle.AsyncRuns,
) -> None:
    job = await runs.create("datatailr", name="job")
    made = await runs.create(
        "datatailr",
        name="child",
        then=[ev.ScheduleArmed()],
        along=(job.run_id, lambda run_id: [ev.ScheduleArmed(run_id=run_id)]),
        key="k1",
    )
    ledger = [r.event for r in await runs.history(job.run_id)]
    assert ledger[-1] == ev.ScheduleArmed(run_id=made.run_id)
    assert (await runs.get(job.run_id)).state == "Scheduled"
    again = await runs.create(  # the same decision again (a retry): written once
        "datatailr",
        name="child",
        then=[ev.ScheduleArmed()],
        along=(job.run_id, lambda run_id: [ev.ScheduleArmed(run_id=run_id)]),
        key="k1",
    )
    assert again == await runs.get(made.run_id)
    assert [r.run_id for r in await runs.list(name="child")] == [made.run_id]
    assert len(await runs.history(job.run_id)) == 2
    await runs.abort(job.run_id)  # the other run moved on: a retry still finds the run it made
    late = await runs.create(
        "datatailr",
        name="child",
        then=[ev.ScheduleArmed()],
        along=(job.run_id, lambda run_id: [ev.ScheduleArmed(run_id=run_id)]),
        key="k1",
    )
    assert late.run_id == made.run_id
    with pytest.raises(lifecycle.StreamClosed):  # a new decision on it is refused
        await runs.create(
            "datatailr",
            name="child",
            along=(job.run_id, lambda run_id: [ev.ScheduleArmed(run_id=run_id)]),
            key="k2",
        )
