"""The adapter conformance suite, and a function-backed fake adapter.

``await check_adapter(make_adapter)`` runs every check of the adapter contract against fresh
instances (inside an anyio test, on whichever backend it runs): it succeeds, fails and is
cancelled with the work an adapter's ``kinds`` say it runs, and checks what it reports::

    async def test_my_adapter() -> None:          # with the anyio pytest plugin
        await check_adapter(MyAdapter)

:class:`MockAdapter` is the fake executor (like httpx's ``MockTransport``): hand it an
``async (spec, report) -> Finished`` function, or none for one that runs callables inline.
"""

from __future__ import annotations

import inspect
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import anyio
import anyio.lowlevel

from lifecycle import events as ev
from lifecycle._engine._adapter import REPORTABLE, Adapter, Finished, Report
from lifecycle._engine._spec import ContainerSpec

__all__ = ["MockAdapter", "check_adapter"]

Handler = Callable[[ContainerSpec, Report], Awaitable[Finished]]
_ENDINGS: Final = (
    ev.ExecutionSucceeded,
    ev.ExecutionFailed,
    ev.OutOfMemory,
    ev.InfrastructureFailed,
)


class MockAdapter(Adapter):
    """An adapter whose every execution is ``handler(spec, report)``.

    Without a handler it reports ``ExecutionStarted``, calls ``spec.call`` inline (awaiting it if
    it is a coroutine function) and returns its value, or ``ExecutionFailed`` if it raises;
    commands just succeed. ``calls`` lists every spec executed.
    """

    name = "mock"

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        kinds: frozenset[str] = frozenset({"command", "call"}),
    ) -> None:
        self.handler = handler or _inline
        self.kinds = kinds
        self.calls: list[ContainerSpec] = []

    async def execute(self, spec: ContainerSpec, report: Report) -> Finished:
        self.calls.append(spec)
        return await self.handler(spec, report)


async def _inline(spec: ContainerSpec, report: Report) -> Finished:
    await report(ev.ExecutionStarted())
    if spec.call is None:
        return Finished(ev.ExecutionSucceeded())
    try:
        value = spec.call(*spec.args, **spec.kwargs)
        if inspect.isawaitable(value):
            value = await value
    except anyio.get_cancelled_exc_class():
        raise
    except Exception as exc:
        return Finished(ev.ExecutionFailed(error=f"{type(exc).__name__}: {exc}"))
    return Finished(ev.ExecutionSucceeded(), value)


# -- the conformance suite -------------------------------------------------------------------------


class _Recorder:
    """A report callback that keeps what it is given and notes contract violations."""

    def __init__(self) -> None:
        self.facts: list[ev.Fact] = []
        self.problems: list[str] = []
        self.returned = False

    async def __call__(self, fact: ev.Fact) -> None:
        if self.returned:
            self.problems.append(f"reported {type(fact).__name__} after execute returned")
        if not isinstance(fact, REPORTABLE):
            names = ", ".join(t.__name__ for t in REPORTABLE)
            self.problems.append(f"reported {type(fact).__name__}; adapters report only {names}")
        self.facts.append(fact)
        await anyio.lowlevel.checkpoint()

    def logs(self, stream: str | None = None) -> list[str]:
        return [
            f.text
            for f in self.facts
            if isinstance(f, ev.LogRecorded) and (stream is None or f.stream == stream)
        ]

    def check(self, what: str) -> None:
        started = [f for f in self.facts if isinstance(f, ev.ExecutionStarted)]
        assert len(started) <= 1, f"{what}: ExecutionStarted reported {len(started)} times"
        assert not self.problems, f"{what}: {'; '.join(self.problems)}"


async def _run(adapter: Adapter, spec: ContainerSpec, what: str) -> tuple[Finished, _Recorder]:
    report = _Recorder()
    with anyio.fail_after(60):
        finished = await adapter.execute(spec, report)
    report.returned = True
    report.check(what)
    assert isinstance(finished, Finished), f"{what}: execute returned {finished!r}, not Finished"
    assert isinstance(finished.fact, _ENDINGS), f"{what}: {finished.fact!r} is not an ending"
    return finished, report


def _spec(name: str, **fields: Any) -> ContainerSpec:
    return ContainerSpec(run_id=1, name=name, **fields)


def _py(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


def _greet(who: str, *, punctuation: str = "!") -> dict[str, Any]:
    print(f"hello {who}{punctuation}")
    print("to stderr", file=sys.stderr)
    return {"who": who, "n": [1, 2]}


async def _agreet(who: str) -> str:
    await anyio.lowlevel.checkpoint()
    print(f"async hello {who}")
    return who.upper()


def _boom() -> None:
    raise ValueError("boom")


def _cooperative_forever() -> None:
    while True:
        anyio.from_thread.check_cancelled()
        time.sleep(0.01)


async def _async_forever() -> None:
    await anyio.sleep(3600)


def _echo(tag: str) -> str:
    for i in range(20):
        print(f"{tag} {i}")
        time.sleep(0.001)
    return tag


async def _check_calls(make: Callable[[], Adapter], grace: float) -> None:
    async with make() as adapter:
        done, rec = await _run(
            adapter, _spec("ok", call=_greet, args=("world",), kwargs={"punctuation": "?"}), "call"
        )
        assert isinstance(done.fact, ev.ExecutionSucceeded), f"call: ended {done.fact!r}"
        assert done.value == {"who": "world", "n": [1, 2]}, f"call: returned {done.value!r}"
        assert any(isinstance(f, ev.ExecutionStarted) for f in rec.facts), "call: never started"
        assert "hello world?" in rec.logs("stdout"), f"call: stdout was {rec.logs('stdout')}"
        assert "to stderr" in rec.logs("stderr"), f"call: stderr was {rec.logs('stderr')}"

        done, rec = await _run(adapter, _spec("async", call=_agreet, args=("x",)), "async call")
        assert isinstance(done.fact, ev.ExecutionSucceeded), f"async call: ended {done.fact!r}"
        assert done.value == "X", f"async call: returned {done.value!r}"
        assert "async hello x" in rec.logs("stdout"), f"async call: logs {rec.logs()}"

        done, rec = await _run(adapter, _spec("boom", call=_boom), "raising call")
        assert isinstance(done.fact, ev.ExecutionFailed), f"raising call: ended {done.fact!r}"
        assert "boom" in done.fact.error, f"raising call: error {done.fact.error!r}"

        for fn in (_cooperative_forever, _async_forever):
            await _check_cancel(adapter, _spec("forever", call=fn), grace)

        results: dict[str, tuple[Finished, _Recorder]] = {}

        async def one(tag: str) -> None:
            results[tag] = await _run(adapter, _spec(tag, call=_echo, args=(tag,)), "concurrent")

        async with anyio.create_task_group() as tg:
            for tag in ("left", "right"):
                tg.start_soon(one, tag)
        for tag, (done, rec) in results.items():
            assert done.value == tag, f"concurrent: {tag} returned {done.value!r}"
            expected = [f"{tag} {i}" for i in range(20)]
            assert rec.logs("stdout") == expected, f"concurrent: {tag} got {rec.logs('stdout')}"


async def _check_commands(make: Callable[[], Adapter], grace: float) -> None:
    async with make() as adapter:
        code = (
            "import os, sys; print('hello', os.environ['LC_CHECK']); print('err', file=sys.stderr)"
        )
        done, rec = await _run(
            adapter, _spec("ok", command=_py(code), env={"LC_CHECK": "env"}), "command"
        )
        assert isinstance(done.fact, ev.ExecutionSucceeded), f"command: ended {done.fact!r}"
        assert any(isinstance(f, ev.ExecutionStarted) for f in rec.facts), "command: not started"
        assert rec.logs("stdout") == ["hello env"], f"command: stdout {rec.logs('stdout')}"
        assert rec.logs("stderr") == ["err"], f"command: stderr {rec.logs('stderr')}"

        done, rec = await _run(adapter, _spec("exit3", command=_py("raise SystemExit(3)")), "exit")
        assert isinstance(done.fact, ev.ExecutionFailed), f"exit 3: ended {done.fact!r}"
        assert done.fact.exit_code == 3, f"exit 3: exit_code {done.fact.exit_code!r}"

        missing = "lifecycle-check-no-such-command"
        done, rec = await _run(adapter, _spec("missing", command=(missing,)), "missing command")
        assert isinstance(done.fact, ev.ExecutionFailed), f"missing command: {done.fact!r}"
        assert any(missing in text for text in rec.logs()), f"missing command: logs {rec.logs()}"

        slow = _py("import time; print('up', flush=True); time.sleep(3600)")
        await _check_cancel(adapter, _spec("forever", command=slow), grace)

        results: dict[str, _Recorder] = {}

        async def one(tag: str) -> None:
            cmd = _py(f"for i in range(50): print('{tag}', i)")
            results[tag] = (await _run(adapter, _spec(tag, command=cmd), "concurrent"))[1]

        async with anyio.create_task_group() as tg:
            for tag in ("left", "right"):
                tg.start_soon(one, tag)
        for tag, rec in results.items():
            expected = [f"{tag} {i}" for i in range(50)]
            assert rec.logs("stdout") == expected, f"concurrent: {tag} got {rec.logs('stdout')}"


async def _check_cancel(adapter: Adapter, spec: ContainerSpec, grace: float) -> None:
    report = _Recorder()
    began = anyio.current_time()
    with anyio.move_on_after(0.5) as scope:
        await adapter.execute(spec, report)
    took = anyio.current_time() - began
    report.returned = True
    assert scope.cancelled_caught, f"cancel {spec.name}: execute returned instead of stopping"
    assert took < 0.5 + grace, f"cancel {spec.name}: took {took:.1f} s to stop (grace {grace})"
    report.check(f"cancel {spec.name}")


async def check_adapter(make_adapter: Callable[[], Adapter], *, grace: float = 10.0) -> None:
    """Check that the adapters ``make_adapter()`` returns keep the contract; raise
    ``AssertionError`` naming the first broken promise.

    Checked, for each kind the adapter declares (``call``, ``command``): a success (with its
    value and output, stdout and stderr apart), a failure (exception, exit code), a command that
    does not exist, an async callable, two executions at once keeping their output apart, the
    environment, and cancellation — ``execute`` must stop the work and re-raise within
    ``grace`` seconds. Throughout: only ``ExecutionStarted`` (once), ``LogRecorded`` and
    ``FinishingStarted`` are reported, nothing after ``execute`` returns, and the ending is one
    of ``ExecutionSucceeded``, ``ExecutionFailed``, ``OutOfMemory``, ``InfrastructureFailed``.
    """
    probe = make_adapter()
    assert isinstance(probe, Adapter), f"make_adapter() returned {probe!r}, not an Adapter"
    kinds = set(probe.kinds)
    await probe.aclose()
    assert kinds, "the adapter declares no kinds (call, command)"
    assert kinds <= {"call", "command"}, f"unknown kinds {sorted(kinds)}"
    if "call" in kinds:
        await _check_calls(make_adapter, grace)
    if "command" in kinds:
        await _check_commands(make_adapter, grace)
