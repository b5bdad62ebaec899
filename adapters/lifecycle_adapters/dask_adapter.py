"""The ``dask`` adapter: the engine runs containers on a Dask cluster (``distributed``).

::

    engine = lifecycle.Engine(runs, adapter="dask")                       # its own LocalCluster
    engine = lifecycle.Engine(runs, adapter=DaskAdapter("tcp://host:8786"))  # a real scheduler

The scheduler is ``address``, else the environment variable ``LIFECYCLE_DASK_SCHEDULER``, else
a ``LocalCluster`` the adapter starts on first use (``n_workers`` processes of
``threads_per_worker`` threads, ``allowed-failures`` 0) and closes in :meth:`aclose`. Both kinds
of container run: commands and Python calls (pickled with ``cloudpickle``, so a function of the
script run as ``__main__`` travels by value, and so does a workflow task's function;
``Upstream`` results are resolved by the engine before). The workers need this package and
whatever the calls import.

**One container = one Dask task = one child process on the worker** (``_dask_worker``): a Dask
task is a worker thread that cannot be interrupted, so the task only supervises a child process,
which can be stopped, limited and killed exactly. Submitted with ``pure=False, retries=0``.

**Live output** travels ``Worker.log_event`` → scheduler → ``Client.subscribe_topic`` (one topic
per adapter; each message names its container): batched comms that already connect every
worker and client, ordered per worker: 1.1 ms median, 4.8 ms at most, from the child's
``print`` to the engine's report callback (100 lines, idle 2-core VM). Chosen over
``Queue``/``Variable`` (a scheduler round trip per line, and the engine must poll) and
``Pub``/``Sub`` (a connection of its own between each publishing worker and the engine, made
as publishers appear). The task counts its messages and returns
the count, so the engine, whose future may resolve before the last lines arrive, waits for all
of them (for at most a few seconds) before it returns.

**Stopping** (abort, timeout, a cancelled engine): the engine runs ``stop_container`` on every
worker through ``Client.run`` — in each worker's event loop, not a task slot, so it works on a
busy worker: ``SIGTERM`` to the child's process group, ``SIGKILL`` after ``grace`` seconds, and
``execute`` re-raises the cancellation once the child is gone. A container not started yet is
cancelled in the scheduler and remembered by the workers, so it never starts. If the engine
itself dies, the scheduler releases its tasks and each task's watcher stops its child.

**Endings**: as the ``subprocess`` adapter's — exit code 0 succeeds; non-zero, a signal or a
call's exception fails (``ExecutionFailed``, with the call's traceback); ``memory_limit`` is
the child's ``RLIMIT_AS`` and ``OutOfMemory`` is reported on the same evidence (``_oom``), never
for a bare worker death. A worker that dies mid-container (``KilledWorker``, or a retry that
finds the container already claimed — ``_dask_worker``) ends it
``InfrastructureFailed(worker_lost)``, with the worker's address in an error log line; Dask
never runs a container twice. ``ExecutionStarted`` is followed by a ``system`` log line naming
the worker and the child's pid (``process`` stays unset: that identity means a process *on the
engine's machine*, which the engine would kill when it reconciles a lost run).

**Task slots**: a container waiting in Dask's queue for a free thread has not started, and
the engine's start timeout (180 s by default) runs meanwhile: give the cluster at least as many
threads as the engine's ``max_parallel`` (each thread only waits for a child process), or raise
``start_timeout``.

**asyncio only**: distributed's asynchronous ``Client`` runs on asyncio; under trio ``execute``
raises ``RuntimeError`` saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import signal
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import anyio
import cloudpickle  # type: ignore[import-untyped]  # a dependency of distributed
import dask
import distributed
from distributed.client import FutureCancelledError

from lifecycle import Adapter, ContainerSpec, Finished, Report, Task
from lifecycle import events as ev

from ._dask_worker import claim_name, run_container, stop_container
from ._lines import MAX_LINE

__all__ = ["SCHEDULER_ENV", "DaskAdapter"]

SCHEDULER_ENV: Final = "LIFECYCLE_DASK_SCHEDULER"
"""The environment variable naming the scheduler when no ``address`` is given."""

_SCATTER_ABOVE: Final = 256 * 1024  # bytes of a pickled call sent apart from its task
_LATE_LINES: Final = 5.0  # seconds to wait for messages still on their way after the task ended


def _by_value(call: Callable[..., Any]) -> Callable[..., Any]:
    """What to pickle for ``call``: a workflow task's function itself (a ``Task`` pickles by
    import path, which a worker cannot follow for a script's tasks; its function, no longer the
    module's attribute of that name, goes by value with ``cloudpickle``)."""
    return call.fn if isinstance(call, Task) else call


class _Inbox:
    """The messages of one execution, put by the topic handler, taken by ``execute``."""

    def __init__(self) -> None:
        self.messages: deque[dict[str, Any]] = deque()
        self.received = 0
        self._event = anyio.Event()

    def put(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        self.received += 1
        self._event.set()

    def wake(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()
        self._event = anyio.Event()


@dataclass
class _Where:
    """Where the container runs, once its ``started`` message came."""

    worker: str | None = None
    pid: int | None = None


class DaskAdapter(Adapter):
    """Runs containers on a Dask cluster (see the module docstring).

    ``address``: the scheduler (``tcp://host:8786``; default ``$LIFECYCLE_DASK_SCHEDULER``, else
    a ``LocalCluster`` of ``n_workers`` × ``threads_per_worker`` owned by the adapter — by
    default as many task slots as the engine's default ``max_parallel``, since a task only waits
    for its child); ``grace``:
    seconds between ``SIGTERM`` and ``SIGKILL`` when stopping; ``max_line``: the longest log
    line, in bytes.
    """

    name = "dask"
    kinds = frozenset({"command", "call"})

    def __init__(
        self,
        address: str | None = None,
        *,
        n_workers: int = 2,
        threads_per_worker: int | None = None,
        grace: float = 5.0,
        max_line: int = MAX_LINE,
    ) -> None:
        self.address = address or os.environ.get(SCHEDULER_ENV) or None
        self.n_workers = n_workers
        # a slot per container the engine runs at once by default (max(4, CPUs)): a container
        # queued in Dask has not started, and the engine's start timeout is running
        self.threads_per_worker = threads_per_worker or max(2, os.cpu_count() or 1)
        self.grace = grace
        self.max_line = max_line
        self.topic = f"lifecycle-dask-{uuid.uuid4().hex}"
        self.client: distributed.Client | None = None
        self.cluster: distributed.LocalCluster | None = None
        self._inboxes: dict[str, _Inbox] = {}
        self._connecting: anyio.Lock | None = None
        self._clearing: set[asyncio.Future[None]] = set()

    async def connect(self) -> distributed.Client:
        """The adapter's client, connected (and its ``LocalCluster`` started) on first use."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "the dask adapter runs under asyncio only: distributed's asynchronous Client "
                "does not run under trio"
            ) from None
        if self._connecting is None:
            self._connecting = anyio.Lock()
        async with self._connecting:
            if self.client is None:
                address = self.address
                if address is None:
                    # a worker that dies fails its task (KilledWorker) instead of a silent rerun
                    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                        self.cluster = await distributed.LocalCluster(
                            n_workers=self.n_workers,
                            threads_per_worker=self.threads_per_worker,
                            processes=True,
                            asynchronous=True,
                            dashboard_address=":0",
                        )
                    address = self.cluster.scheduler_address
                client = await distributed.Client(address, asynchronous=True)
                client.subscribe_topic(self.topic, self._on_message)
                self.client = client
        assert self.client is not None
        return self.client

    def _on_message(self, event: tuple[float, dict[str, Any]]) -> None:
        message = event[1]
        inbox = self._inboxes.get(message.get("id", ""))
        if inbox is not None:
            inbox.put(message)

    async def aclose(self) -> None:
        """Close the client, and the ``LocalCluster`` if the adapter started it. Idempotent."""
        client, self.client = self.client, None
        cluster, self.cluster = self.cluster, None
        with anyio.CancelScope(shield=True):
            if self._clearing:
                with anyio.move_on_after(5):
                    await asyncio.gather(*self._clearing)
            if client is not None:
                await client.close()
            if cluster is not None:
                await cluster.close()  # type: ignore[misc]  # asynchronous: awaitable

    async def execute(self, spec: ContainerSpec, report: Report) -> Finished:
        client = await self.connect()
        payload: bytes | None = None
        if spec.call is not None:
            try:
                payload = cloudpickle.dumps((_by_value(spec.call), spec.args, spec.kwargs))
            except Exception as exc:
                text = f"container {spec.name!r} cannot be sent to a Dask worker: {exc}"
                await report(ev.LogRecorded(level="error", stream="system", text=text))
                return Finished(ev.ExecutionFailed(error=text))
        elif spec.command is None:
            raise TypeError(f"container {spec.name!r} has neither a command nor a call")
        key = f"lifecycle-{spec.run_id}-{spec.name}-{uuid.uuid4().hex[:16]}"
        env = {**spec.env, "LIFECYCLE_RUN_ID": str(spec.run_id), "LIFECYCLE_CONTAINER": spec.name}
        command = None if spec.command is None else list(spec.command)
        inbox = self._inboxes[key] = _Inbox()
        where = _Where()
        scattered: distributed.Future[bytes] | None = None
        if payload is not None and len(payload) > _SCATTER_ABOVE:
            # big inputs (upstream results) go to a worker directly, not inside the graph
            scattered = await client.scatter(payload, hash=False)
        future = client.submit(
            run_container,
            key,
            topic=self.topic,
            command=command,
            payload=payload if scattered is None else scattered,
            env=env,
            memory_limit=spec.memory_limit,
            grace=self.grace,
            max_line=self.max_line,
            key=key,
            pure=False,
            retries=0,
        )
        try:
            try:
                result = await self._follow(future, inbox, report, where)
            except anyio.get_cancelled_exc_class():
                with anyio.CancelScope(shield=True):
                    await self._stop(client, future, key)
                    await self._deliver(inbox, report, where)
                raise
            return await self._ending(spec, result, report, where)
        finally:
            self._inboxes.pop(key, None)
            future.release()
            if scattered is not None:
                scattered.release()
            self._forget_claim(client, key)

    def _forget_claim(self, client: distributed.Client, key: str) -> None:
        """Drop the container's claim from the scheduler, off the container's path (one round
        trip it need not wait for); :meth:`aclose` waits for what is left."""

        async def clear() -> None:
            with contextlib.suppress(Exception):
                await distributed.Event(claim_name(key), client=client).clear()

        task = asyncio.ensure_future(clear())
        self._clearing.add(task)
        task.add_done_callback(self._clearing.discard)

    async def _follow(
        self, future: distributed.Future[Any], inbox: _Inbox, report: Report, where: _Where
    ) -> dict[str, Any] | BaseException:
        """Report the container's messages until its task ended; its result or exception."""
        outcome: list[dict[str, Any] | BaseException] = []

        async def wait() -> None:
            try:
                outcome.append(await future)
            except (Exception, FutureCancelledError) as exc:
                outcome.append(exc)
            inbox.wake()

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            while not outcome:
                await self._deliver(inbox, report, where)
                if not outcome:
                    await inbox.wait()
        result = outcome[0]
        if isinstance(result, dict):
            with anyio.move_on_after(_LATE_LINES):
                while inbox.received < result["sent"]:
                    await self._deliver(inbox, report, where)
                    await inbox.wait()
        await self._deliver(inbox, report, where)
        return result

    async def _deliver(self, inbox: _Inbox, report: Report, where: _Where) -> None:
        """Report every message received so far, in order."""
        while inbox.messages:
            message = inbox.messages.popleft()
            if message["kind"] == "started":
                where.worker, where.pid = message["worker"], message["pid"]
                await report(ev.ExecutionStarted())
                text = f"running on Dask worker {where.worker}, pid {where.pid}"
                await report(ev.LogRecorded(level="info", stream="system", text=text))
            else:
                for line in message["lines"]:
                    if message["stream"] == "stderr":
                        fact = ev.LogRecorded(level="info", stream="stderr", text=line)
                    else:
                        fact = ev.LogRecorded(level="info", stream="stdout", text=line)
                    await report(fact)

    async def _stop(
        self, client: distributed.Client, future: distributed.Future[Any], key: str
    ) -> None:
        """Stop the container wherever it runs, or make sure it never starts."""
        with anyio.move_on_after(self.grace + 15):
            await client.run(stop_container, key, on_error="ignore")
            await client.cancel([future])

    async def _ending(
        self,
        spec: ContainerSpec,
        result: dict[str, Any] | BaseException,
        report: Report,
        where: _Where,
    ) -> Finished:
        """The container's ending from what its task returned (see the module docstring)."""
        if isinstance(result, distributed.KilledWorker):
            last = result.last_worker
            worker = where.worker or getattr(last, "address", None) or str(last)
            return await self._lost(report, f"Dask worker {worker} died while running it")
        if isinstance(result, BaseException):
            text = f"the Dask task failed: {type(result).__name__}: {result}"
            await report(ev.LogRecorded(level="error", stream="system", text=text))
            return Finished(ev.InfrastructureFailed(reason="dask_error"))
        if result.get("lost"):
            worker = where.worker or "a worker"
            retry = result["worker"]
            text = f"{worker} died while running it (Dask retried it on {retry}; not run twice)"
            return await self._lost(report, text)
        if "cannot_start" in result:
            text = result["cannot_start"]
            await report(ev.LogRecorded(level="error", stream="system", text=text))
            return Finished(ev.ExecutionFailed(error=text, exit_code=result["exit_code"]))
        code: int | None = result["code"]
        if result["oom"]:
            return Finished(ev.OutOfMemory(limit_bytes=spec.memory_limit))
        if spec.call is not None and code is not None and code >= 0 and "outcome" in result:
            try:
                outcome = pickle.loads(result["outcome"])
            except Exception as exc:
                text = f"the result of {spec.name!r} cannot be read here: {exc}"
                await report(ev.LogRecorded(level="error", stream="system", text=text))
                return Finished(ev.ExecutionFailed(error=text, exit_code=code))
            if outcome[0] == "ok" and code == 0:
                return Finished(ev.ExecutionSucceeded(), outcome[1])
            if outcome[0] == "error":
                return Finished(
                    ev.ExecutionFailed(error=outcome[1], traceback=outcome[2], exit_code=code)
                )
        if code == 0:
            return Finished(ev.ExecutionSucceeded())
        if code is None:
            return Finished(ev.ExecutionFailed(error="stopped before it started"))
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            return Finished(ev.ExecutionFailed(error=f"killed by {name}", exit_code=code))
        return Finished(ev.ExecutionFailed(error=f"exited with code {code}", exit_code=code))

    @staticmethod
    async def _lost(report: Report, text: str) -> Finished:
        await report(ev.LogRecorded(level="error", stream="system", text=f"worker lost: {text}"))
        return Finished(ev.InfrastructureFailed(reason="worker_lost"))
