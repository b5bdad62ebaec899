"""The ``inprocess`` adapter: per-container capture, endings, cancellation of threads."""

from __future__ import annotations

import logging
import sys
import threading
import time

import anyio
import pytest
from lifecycle_adapters.inprocess import InProcessAdapter

from lifecycle import events as ev
from lifecycle._engine import ContainerSpec, Finished

pytestmark = pytest.mark.anyio


class Recorder:
    def __init__(self) -> None:
        self.facts: list[ev.Fact] = []

    async def __call__(self, fact: ev.Fact) -> None:
        self.facts.append(fact)

    def logs(self) -> list[tuple[str, str, str]]:
        return [(f.stream, f.level, f.text) for f in self.facts if isinstance(f, ev.LogRecorded)]


async def run(
    fn: object, *args: object, adapter: InProcessAdapter | None = None
) -> tuple[Finished, Recorder]:
    report = Recorder()
    spec = ContainerSpec(run_id=1, name="c", call=fn, args=args)  # type: ignore[arg-type]
    return await (adapter or InProcessAdapter()).execute(spec, report), report


async def test_logging_records_are_captured_with_their_level() -> None:
    def work() -> None:
        logging.getLogger("mine").warning("careful: %s", "hot")
        logging.getLogger("mine").debug("not let through by the default levels")

    finished, report = await run(work)
    assert isinstance(finished.fact, ev.ExecutionSucceeded)
    assert report.logs() == [("stderr", "warning", "mine: careful: hot")]
    assert logging.getLogger().handlers == [] or all(
        type(h).__name__ != "_Handler" for h in logging.getLogger().handlers
    )


async def test_memory_error_is_out_of_memory() -> None:
    def hungry() -> None:
        raise MemoryError

    finished, report = await run(hungry)
    assert finished.fact == ev.OutOfMemory(limit_bytes=None)
    assert any("MemoryError" in text for _, _, text in report.logs())


async def test_system_exit() -> None:
    finished, _ = await run(sys.exit, 0)
    assert isinstance(finished.fact, ev.ExecutionSucceeded)
    finished, _ = await run(sys.exit, 3)
    assert finished.fact == ev.ExecutionFailed(error="SystemExit(3)", exit_code=3)


async def test_output_outside_containers_is_left_alone(capsys: pytest.CaptureFixture[str]) -> None:
    inside = threading.Event()
    leave = threading.Event()

    def work() -> None:
        print("captured")
        inside.set()
        leave.wait(10)

    async with anyio.create_task_group() as tg:
        results: list[tuple[Finished, Recorder]] = []

        async def go() -> None:
            results.append(await run(work))

        tg.start_soon(go)
        while not inside.is_set():  # noqa: ASYNC110  (polling another process / thread)
            await anyio.sleep(0.01)
        print("from the test itself")
        leave.set()
    assert results[0][1].logs() == [("stdout", "info", "captured")]
    assert capsys.readouterr().out == "from the test itself\n"
    assert type(sys.stdout).__name__ != "_Router"


async def test_a_thread_that_ignores_cancellation_is_abandoned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    finished_thread = threading.Event()

    def stubborn() -> None:
        time.sleep(1.0)
        finished_thread.set()

    began = anyio.current_time()
    with anyio.move_on_after(0.1):
        await run(stubborn, adapter=InProcessAdapter(grace=0.2))
    took = anyio.current_time() - began
    assert took < 0.9
    assert not finished_thread.is_set()
    assert "its thread was abandoned" in caplog.text
    finished_thread.wait(5)
